"""The train flow end to end against a real Prefect server: champion, ledger, lineage, artifacts and events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.registry import open_registry
from driftline.settings import get_settings
from tests.conftest import REPO, Project

pytestmark = pytest.mark.integration

WEAK = {"estimator.params": {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.3}, "gate.min_metric": 0.5}


def _events(api: str, flow_run_id: Any, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """driftline events related to one flow run, polled until ``expected`` arrive (events are sent asynchronously)."""
    body = {
        "filter": {"event": {"prefix": ["driftline."]}, "related": {"id": [f"prefect.flow-run.{flow_run_id}"]}},
        "limit": 50,
    }
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = httpx.post(f"{api}/events/filter", json=body, timeout=10).json()["events"]
        if len(found) >= expected:
            break
        time.sleep(0.5)
    return found


def _artifact_keys(api: str, flow_run_id: Any) -> set[str]:
    body = {"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 50}
    artifacts = httpx.post(f"{api}/artifacts/filter", json=body, timeout=10).json()
    return {artifact["key"] for artifact in artifacts if artifact.get("key")}


def test_train_promotes_rejects_and_quarantines(project: Project, prefect_server: str) -> None:
    from flows.train import train

    (project.root / "uv.lock").write_bytes((REPO / "uv.lock").read_bytes())
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2500, seed))

    # 1. First run: no champion; the gate's min_metric is met, so the challenger is promoted.
    state = train(model="fraud", reason="test: first", return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    run_id = state.state_details.flow_run_id
    assert first.promoted and first.version and first.previous is None
    registry = open_registry()
    champion = registry.champion("fraud")
    assert champion is not None and champion.version == first.version
    (entry,) = registry.ledger("fraud")
    assert (entry.action, entry.from_version, entry.to_version) == ("promote", None, first.version)
    assert entry.flow_run_id == str(run_id)
    lineage = registry.version("fraud", first.version).lineage
    assert lineage.tag == first.tag and lineage.flow_run_id == str(run_id)
    assert lineage.rows == 5000 and len(lineage.data_fingerprint) == 64
    assert len(lineage.suite_digest) == 64 and lineage.suite == "fraud.json"
    assert Path(lineage.profile_path).is_file() and Path(lineage.holdout_path).is_file()
    assert lineage.lock_digest and lineage.metrics["roc_auc"] > 0.85
    assert lineage.params["n_estimators"] == 200 and lineage.reason == "test: first"
    assert pd.read_parquet(lineage.holdout_path).shape[0] == lineage.holdout_rows
    project_id = get_settings().project_id
    assert _artifact_keys(prefect_server, run_id) >= {
        f"{project_id}-fraud-validation",
        f"{project_id}-fraud-metrics",
        f"{project_id}-fraud-gate",
        f"{project_id}-fraud-lineage",
    }
    (promoted,) = _events(prefect_server, run_id, expected=1)
    assert promoted["event"] == "driftline.model.promoted"
    assert promoted["resource"]["prefect.resource.id"] == f"driftline.model.{project_id}.fraud"
    assert (promoted["resource"]["driftline.project"], promoted["resource"]["driftline.model"]) == (project_id, "fraud")
    assert promoted["payload"]["version"] == first.version

    # 2. A worse configuration on the same data: rejected against the champion on the same holdout.
    state = train(model="fraud", overrides=WEAK, return_state=True)
    assert state.is_completed(), state.message
    second = state.result()
    assert not second.promoted
    assert second.decision.champion_version == first.version
    assert second.decision.challenger < second.decision.champion
    assert second.decision.holdout_digest == first.decision.holdout_digest
    assert registry.champion("fraud").version == first.version  # type: ignore[union-attr]
    assert len(registry.ledger("fraud")) == 1
    assert [d.accepted for d in registry.gate_decisions("fraud")] == [False, True]
    (rejected,) = _events(prefect_server, state.state_details.flow_run_id, expected=1)
    assert rejected["event"] == "driftline.model.rejected"

    # 3. A corrupt batch lands in the source: a byte-identical copy is quarantined, the user's file stays where it
    #    is, unchanged, and the flow fails naming file/column/expectation and saying the file was left in place.
    corrupt = project.write_fraud_batch("batch-3.parquet", generate(2500, 3, corrupt=True))
    original = corrupt.read_bytes()
    state = train(model="fraud", return_state=True)
    assert state.is_failed()
    message = str(state.message)
    assert "batch-3.parquet" in message and "'amount'" in message and "expect_column_values_to_be_between" in message
    assert f"{corrupt} is left in place" in message
    assert corrupt.read_bytes() == original
    (kept,) = (project.state / "quarantine" / "fraud").glob("*/batch-3.parquet")
    assert kept.read_bytes() == original and not kept.samefile(corrupt)
    evidence = json.loads((kept.parent / "validation.json").read_text())
    assert (evidence["source_kind"], evidence["origin_path"], evidence["moved"]) == ("source", str(corrupt), False)
    assert registry.champion("fraud").version == first.version  # type: ignore[union-attr]
    (failed,) = _events(prefect_server, state.state_details.flow_run_id, expected=1)
    assert failed["event"] == "driftline.validation.failed"
    assert failed["payload"]["quarantined"] == str(kept)
    assert failed["payload"]["left_in_place"] is True
    corrupt.unlink()  # the user removes their bad file: it is theirs to remove, never driftline's

    # 4. With the bad batch gone, the next run trains on the clean ones again (nothing blocks the loop).
    state = train(model="fraud", return_state=True)
    assert state.is_completed(), state.message


def test_breast_cancer_trains_from_its_spec_alone(project: Project, prefect_server: str) -> None:
    from flows.train import train

    outcome = train(model="breast_cancer")
    assert outcome.promoted, outcome.decision.reason
    assert outcome.decision.challenger >= 0.95
    champion = open_registry().champion("breast_cancer")
    assert champion is not None and champion.version == outcome.version


def test_a_misspelled_target_is_a_spec_error_and_the_users_file_is_untouched(
    project: Project, prefect_server: str
) -> None:
    from flows.train import train

    source = project.write_fraud_batch("batch-1.parquet", generate(600, 1))
    original = source.read_bytes()
    spec_file = project.root / "deployments" / "fraud.toml"
    spec_file.write_text(spec_file.read_text().replace('target = "is_fraud"', 'target = "is_frad"'))

    state = train(model="fraud", return_state=True)

    assert state.is_failed()
    message = str(state.message)
    assert "SpecError" in message and "fraud.toml" in message and "target" in message and "is_fraud" in message
    assert source.read_bytes() == original
    assert not (project.state / "quarantine").exists()
