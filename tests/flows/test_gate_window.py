"""The gate on today's data, end to end against a real Prefect server: a window of recent batches decides, a plain
train trains on the data the champion saw, a run that would retrain the champion is ``unchanged`` (no version, no
ledger entry, no event), and a window batch that now fails validation leaves the window without failing the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.loop.data import fingerprint
from driftline.registry import open_registry
from tests.conftest import REPO, Project
from tests.flows.test_train import _events

pytestmark = pytest.mark.integration

# Small and fast: fewer trees, and no servability check (tests/integration covers it).
FAST = {"estimator.params": {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.2}, "serving.check": False}


def _shifted(rows: int, seed: int) -> pd.DataFrame:
    """A month after a real shift: big card-present purchases (a new kind of customer) are legitimate now.

    The champion learned that big amounts mean fraud, so it ranks these rows first; a model that saw the window
    learns otherwise. Old rows have almost no amounts this large, so adapting costs little on them.
    """
    frame = generate(rows, seed)
    rng = np.random.default_rng(seed)
    big = rng.random(rows) < 0.4
    frame.loc[big, "amount"] = np.round(rng.uniform(2000.0, 5000.0, int(big.sum())), 2)
    frame.loc[big, "card_present"] = 1
    frame.loc[big, "is_fraud"] = 0
    return frame


def _accept(project: Project, name: str, frame: pd.DataFrame) -> str:
    """A batch the monitor accepted: stored under the state directory and recorded ``accepted``."""
    folder = project.state / "batches" / "fraud"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_parquet(path, index=False)
    registry = open_registry()
    digest = fingerprint(pd.read_parquet(path))
    assert registry.claim_batch("fraud", digest, str(path))
    registry.finish_batch("fraud", digest, status="accepted", stored_path=str(path), rows=len(frame))
    return str(path)


def test_a_window_decides_and_a_plain_train_keeps_the_adapted_champion(project: Project, prefect_server: str) -> None:
    from flows.train import train

    (project.root / "uv.lock").write_bytes((REPO / "uv.lock").read_bytes())
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(1500, seed))
    first = train(model="fraud", overrides=FAST, reason="test: first")
    assert first.promoted and first.outcome == "accepted"
    assert first.decision.recent is None  # no window yet

    # 1. A retrain on the source plus a window after the shift: the recent rows decide.
    window = [_accept(project, f"month-{seed}.parquet", _shifted(800, seed)) for seed in (11, 12, 13)]
    adapted = train(model="fraud", overrides=FAST, window=window, reason="drift")
    decision = adapted.decision
    assert adapted.promoted, decision.reason
    assert decision.decided_on == "recent" and decision.recent is not None and decision.fixed is not None
    assert decision.recent.rows > 200 and decision.recent.improvement is not None
    assert decision.recent.improvement > 0.05  # the champion ranks the new legitimate purchases as fraud
    assert decision.lower_bound is not None and decision.lower_bound > 0
    assert decision.allowed_regression is not None and decision.fixed.improvement is not None
    assert -decision.fixed.improvement <= decision.allowed_regression
    registry = open_registry()
    assert registry.version("fraud", adapted.version).lineage.window == window

    # 2. A plain train (no window passed) trains on what the champion saw: the same data, spec and code, so it is
    #    unchanged: no new version, no ledger entry, no event, one recorded decision.
    versions, ledger, gates = len(registry.versions("fraud")), len(registry.ledger("fraud")), registry.gate_decisions
    before = len(gates("fraud", limit=100))
    state = train(model="fraud", overrides=FAST, return_state=True)
    again = state.result()
    assert again.outcome == "unchanged" and not again.promoted, again.decision.reason
    assert again.decision.challenger is None and again.previous == adapted.version
    assert registry.champion("fraud").version == adapted.version  # type: ignore[union-attr]
    assert len(registry.versions("fraud")) == versions and len(registry.ledger("fraud")) == ledger
    (record,) = gates("fraud", limit=100)[: len(gates("fraud", limit=100)) - before]
    assert record.evidence["outcome"] == "unchanged" and not record.accepted
    assert _events(prefect_server, state.state_details.flow_run_id, expected=1, timeout=5) == []

    # 3. Another configuration on the same data trains, still on the champion's window, and is judged there.
    other = train(model="fraud", overrides={**FAST, "estimator.params.max_depth": 2})
    assert other.outcome != "unchanged"
    assert other.decision.decided_on == "recent" and other.decision.recent is not None
    assert other.decision.recent.rows == decision.recent.rows

    # 4. A window batch quarantined since then leaves the champion's window: a plain train no longer matches it.
    gone = fingerprint(pd.read_parquet(window[2]))
    registry.finish_batch("fraud", gone, status="quarantined")
    fewer = train(model="fraud", overrides=FAST)
    assert fewer.outcome != "unchanged"
    assert fewer.decision.recent is not None and 0 < fewer.decision.recent.rows < decision.recent.rows


def test_a_window_batch_failing_validation_leaves_the_window_and_the_run_goes_on(
    project: Project, prefect_server: str
) -> None:
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(1500, seed))
    assert train(model="fraud", overrides=FAST).promoted
    good = _accept(project, "month-21.parquet", generate(500, 21))
    bad = _accept(project, "month-22.parquet", generate(500, 22, corrupt=True))
    original, bad_fingerprint = Path(bad).read_bytes(), fingerprint(pd.read_parquet(bad))

    state = train(model="fraud", overrides=FAST, window=[good, bad], reason="drift", return_state=True)

    assert state.is_completed(), state.message
    outcome = state.result()
    assert outcome.decision.recent is not None and outcome.decision.recent.rows > 0
    registry = open_registry()
    quarantined = registry.batch("fraud", bad_fingerprint)
    assert quarantined is not None and quarantined.status == "quarantined"
    assert quarantined.stored_path is not None and Path(quarantined.stored_path).read_bytes() == original
    assert [b.stored_path for b in registry.batches("fraud", status="accepted")] == [good]
    (decision,) = registry.decisions("fraud", decision="window_batch_quarantined")
    assert bad in decision.reason and decision.fingerprint == bad_fingerprint
    assert decision.flow_run_id == str(state.state_details.flow_run_id)
    if outcome.promoted:
        assert registry.version("fraud", outcome.version).lineage.window == [good]
