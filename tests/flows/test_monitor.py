"""The monitor flow against a real Prefect server: clean batches pass quietly, drifted ones raise one event."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.examples.fraud import generate
from driftline.oncall.events import model_resource_id
from driftline.registry import open_registry
from tests.conftest import Project
from tests.flows.test_train import _events

pytestmark = pytest.mark.integration

# A champion to monitor against. Its servability check is not what these tests are about (tests/integration and
# tests/reliability/test_kills.py run it), so it is waived here: the champion is recorded as waived, and says so.
CHAMPION = {"serving.check": False}


def test_monitor_scores_drift_and_never_processes_a_batch_twice(project: Project, prefect_server: str) -> None:
    from flows.monitor import monitor
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(5000, seed))
    assert train(model="fraud", overrides=CHAMPION).promoted
    landing = project.fraud_data / "landing"
    landing.mkdir()

    clean = generate(10_000, 21)
    clean.to_parquet(landing / "clean.parquet", index=False)
    state = monitor(model="fraud", return_state=True)
    assert state.is_completed(), state.message
    (outcome,) = state.result()
    assert (outcome.status, outcome.drifted, outcome.decision.decision) == ("accepted", [], "no_drift")
    assert not (landing / "clean.parquet").exists()
    clean_events = _events(prefect_server, state.state_details.flow_run_id, expected=2, timeout=5)
    assert [e["event"] for e in clean_events] == ["driftline.monitor.ran"]  # the heartbeat, and no drift
    assert clean_events[0]["payload"] == {"batches": 1, "windows": 0}

    generate(10_000, 22, drift=True).to_parquet(landing / "drifted.parquet", index=False)
    state = monitor(model="fraud", return_state=True)
    (outcome,) = state.result()
    assert outcome.decision.retrain
    assert {"amount", "merchant_category", "country"} <= set(outcome.drifted)
    assert outcome.report_path and "<script" not in Path(outcome.report_path).read_text()
    events = _events(prefect_server, state.state_details.flow_run_id, expected=2)
    (event,) = [e for e in events if e["event"] != "driftline.monitor.ran"]
    assert event["event"] == "driftline.drift.detected"
    assert event["payload"]["alert"]["kind"] == "drift_detected" and "amount" in event["payload"]["alert"]["subject"]
    assert event["resource"]["driftline.alert-key"] == event["payload"]["alert"]["dedupe_key"]
    assert event["payload"]["fingerprint"] == outcome.fingerprint
    assert event["resource"]["prefect.resource.id"] == model_resource_id("fraud")
    assert {c["column"] for c in event["payload"]["columns"]} == set(outcome.drifted)
    assert {"feature", "target", "prediction"} >= set(event["payload"]["kinds"]) >= {"feature"}
    assert all(c["rows"] == 10_000 and c["threshold"] >= c["floor"] for c in event["payload"]["columns"])

    # Nothing new: nothing processed. The same content again: kept as a duplicate, not scored twice.
    assert monitor(model="fraud") == []
    clean.to_parquet(landing / "clean-again.parquet", index=False)
    (again,) = monitor(model="fraud")
    assert again.status == "duplicate"
    registry = open_registry()
    assert [b.status for b in registry.batches("fraud")] == ["accepted", "accepted"]
    assert [d.decision for d in registry.decisions("fraud")] == ["retrain_requested", "no_drift"]


def test_a_broken_landing_batch_is_moved_to_quarantine_replayed_home_and_then_scored(
    project: Project, prefect_server: str
) -> None:
    from driftline.oncall.replay import replay
    from driftline.spec import load_spec
    from flows.monitor import monitor
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(5000, seed))
    assert train(model="fraud", overrides=CHAMPION).promoted
    landing = project.fraud_data / "landing"
    landing.mkdir()
    broken = landing / "late.parquet"
    generate(2000, 41).assign(hour=lambda f: f["hour"] + 24).to_parquet(broken, index=False)
    original = broken.read_bytes()

    state = monitor(model="fraud", return_state=True)
    assert state.is_failed() and "late.parquet" in str(state.message)
    assert not broken.exists()  # a landing file is moved out of the way, never scored twice
    (kept,) = (project.state / "quarantine" / "fraud").glob("*/late.parquet")
    assert kept.read_bytes() == original

    # The suite learns that hours run to 47 (say, a new time convention); replay sends the batch home.
    suite = project.root / "expectations" / "fraud.json"
    suite.write_text(suite.read_text().replace('"max_value": 23', '"max_value": 47'))
    done = replay(load_spec("fraud"), kept.parent.name)
    assert done.passes and done.released and done.origin == str(broken) and broken.read_bytes() == original
    (outcome,) = monitor(model="fraud")
    assert outcome.status == "accepted" and outcome.decision is not None  # scored, not filed as a duplicate


def test_a_column_that_cannot_be_scored_raises_its_own_alert(project: Project, prefect_server: str) -> None:
    from flows.monitor import monitor
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(5000, seed))
    assert train(model="fraud", overrides=CHAMPION).promoted
    landing = project.fraud_data / "landing"
    landing.mkdir()
    generate(3000, 51).assign(distance_km=float("nan")).to_parquet(landing / "feed-broken.parquet", index=False)
    state = monitor(model="fraud", return_state=True)
    (outcome,) = state.result()
    assert outcome.status == "accepted" and "distance_km" not in outcome.drifted
    assert outcome.undecided == ["distance_km"]
    found = _events(prefect_server, state.state_details.flow_run_id, expected=2)
    (undecided,) = [e for e in found if e["event"] == "driftline.drift.undecided"]
    assert undecided["payload"]["columns"][0]["status"] == "unscorable"
    assert undecided["payload"]["alert"]["kind"] == "drift_undecided"
    assert "distance_km" in undecided["payload"]["alert"]["body"]


def test_an_unreadable_file_is_quarantined_and_the_next_file_is_still_scored(
    project: Project, prefect_server: str
) -> None:
    from flows.monitor import monitor
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(5000, seed))
    assert train(model="fraud", overrides=CHAMPION).promoted
    landing = project.fraud_data / "landing"
    landing.mkdir()
    (landing / "a-empty.parquet").write_bytes(b"")
    (landing / "b-notes.txt").write_bytes(b"hello")
    generate(3000, 61).to_parquet(landing / "c-good.parquet", index=False)

    state = monitor(model="fraud", return_state=True)
    assert state.is_failed() and "a-empty.parquet" in str(state.message) and "b-notes.txt" in str(state.message)
    assert sorted(path.name for path in landing.iterdir()) == []
    kept = {path.name: path for path in (project.state / "quarantine" / "fraud").glob("*/*") if path.suffix != ".json"}
    assert kept["a-empty.parquet"].read_bytes() == b"" and kept["b-notes.txt"].read_bytes() == b"hello"
    statuses = {b.origin.rsplit("/", 1)[-1]: b.status for b in open_registry().batches("fraud")}
    assert statuses == {"a-empty.parquet": "quarantined", "b-notes.txt": "quarantined", "c-good.parquet": "accepted"}
    found = _events(prefect_server, state.state_details.flow_run_id, expected=3)
    failed = [e for e in found if e["event"] == "driftline.validation.failed"]
    assert {e["payload"]["batch"].rsplit("/", 1)[-1] for e in failed} == {"a-empty.parquet", "b-notes.txt"}
    assert any("empty (0 bytes)" in e["payload"]["failures"][0] for e in failed)
