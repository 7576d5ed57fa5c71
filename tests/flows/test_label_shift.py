"""Monthly batches of about 30 rows, then a label shift: quiet before it, target drift after it, a retrain that adapts.

This is the case that used to go wrong on real data: every small batch flagged, a challenger better on the recent
rows rejected on a holdout of old rows, and a later plain train undoing the adapted champion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.registry import open_registry
from tests.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
name = "monthly"
task = "classification"
target = "renewed"

[source]
path = "data/monthly/history.parquet"

[features]
numeric = ["usage", "tenure"]
categorical = ["plan"]

[estimator]
kind = "logistic_regression"
params = { max_iter = 1000 }

[metric]
name = "accuracy"

[monitor]
settle_seconds = 0
"""

SUITE = {
    "name": "monthly",
    "expectations": [
        *({"type": "expect_column_to_exist", "kwargs": {"column": c}, "meta": {}} for c in ("usage", "plan")),
        {"type": "expect_column_to_exist", "kwargs": {"column": "tenure"}, "meta": {}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "renewed", "value_set": [0, 1]}, "meta": {}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "plan", "value_set": ["basic", "plus"]}},
    ],
}


def _month(seed: int, renewal_rate: float) -> pd.DataFrame:
    """One month: 28 to 31 rows; usage separates the classes weakly, tenure has missing values."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(28, 32))
    renewed = (rng.random(rows) < renewal_rate).astype("int64")
    tenure = rng.normal(24 + 6 * renewed, 10)
    tenure[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "usage": rng.normal(1.2 * renewed, 1.0),
            "tenure": tenure,
            "plan": rng.choice(["basic", "plus"], size=rows, p=[0.6, 0.4]),
            "renewed": renewed,
        }
    )


def test_small_monthly_batches_stay_quiet_until_a_label_shift_and_a_retrain_adapts(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.monitor import monitor

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    (project.root / "deployments" / "monthly.toml").write_text(SPEC)
    (project.root / "expectations" / "monthly.json").write_text(json.dumps(SUITE))
    data = project.root / "data" / "monthly"
    landing = data / "landing"
    landing.mkdir(parents=True)
    pd.concat([_month(seed, 0.3) for seed in range(12)], ignore_index=True).to_parquet(data / "history.parquet")
    runner = CliRunner()

    first = runner.invoke(app, ["train", "monthly"])
    assert first.exit_code == 0 and "promoted" in first.output, first.output
    registry = open_registry()
    adapted_from = registry.champion("monthly")
    assert adapted_from is not None

    def land(name: str, frame: pd.DataFrame) -> list[str]:
        frame.to_parquet(landing / f"{name}.parquet")
        (outcome,) = monitor(model="monthly")
        assert outcome.status == "accepted" and not outcome.undecided, outcome
        return outcome.drifted

    before = [land(f"2025-{month:02d}", _month(100 + month, 0.3)) for month in range(1, 13)]
    assert sum(bool(drifted) for drifted in before) <= 1, before
    after = [land(f"2026-{month:02d}", _month(200 + month, 0.8)) for month in range(1, 9)]
    assert sum("renewed" in drifted for drifted in after) >= 5, after

    retrained = runner.invoke(app, ["retrain", "monthly"])
    assert retrained.exit_code == 0 and "promoted" in retrained.output, retrained.output
    champion = registry.champion("monthly")
    assert champion is not None and champion.version != adapted_from.version
    gate = registry.gate_decisions("monthly", limit=1)[0].evidence
    assert gate["decided_on"] == "recent", gate
    assert gate["recent"]["challenger"] > gate["recent"]["champion"], gate
    lineage = registry.version("monthly", champion.version).lineage
    assert lineage.reason == "manual" and len(lineage.window) == 5

    # A plain train afterwards trains on the data the adapted champion saw, so it cannot undo the adaptation.
    plain = runner.invoke(app, ["train", "monthly"])
    assert plain.exit_code == 0, plain.output
    assert registry.champion("monthly") == champion
    assert [entry.to_version for entry in registry.ledger("monthly")][-1] == champion.version
    assert all(Path(path).is_file() for path in lineage.window)

    # The nightly retrain with no new data would train the champion again: unchanged, nothing packaged, no page.
    ledger = len(registry.ledger("monthly"))
    nightly = runner.invoke(app, ["retrain", "monthly", "--reason", "scheduled"])
    assert nightly.exit_code == 0 and "retrain_unchanged" in nightly.output, nightly.output
    assert len(registry.ledger("monthly")) == ledger and registry.champion("monthly") == champion
    assert registry.gate_decisions("monthly", limit=1)[0].evidence["outcome"] == "unchanged"
