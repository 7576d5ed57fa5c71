"""Drift → event → trigger → retrain, against a real Prefect server and a real served deployment process."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from driftline.examples.fraud import generate
from driftline.oncall.events import model_resource
from driftline.registry import open_registry
from driftline.runtime.prefect_api import TERMINAL, deployment_id, flow_runs
from driftline.runtime.processes import spawn, stop
from tests.conftest import Project
from tests.flows.test_train import _events

pytestmark = pytest.mark.integration


def _wait_runs(api: str, deployment: str, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = flow_runs(api, deployment)
        if len(runs) >= count and all(run["state_type"] in TERMINAL for run in runs):
            return runs
        time.sleep(2)
    states = sorted(run["state_type"] for run in runs)
    raise AssertionError(f"expected {count} finished retrain runs in {timeout} s, found {states}")


@pytest.fixture
def served(project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[bytes]]:
    """``driftline serve-flows fraud`` in its own process, polling every second; stopped after the test."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)  # the runner process inherits it
    process = spawn(["fraud"], project.root, project.root / "serve.log", poll_seconds=1, limit=4)
    try:
        yield process
    finally:
        stop(process)


def _cooldown_off(project: Project) -> None:
    spec = project.root / "deployments" / "fraud.toml"
    spec.write_text(spec.read_text().replace("[drift]\n", "[drift]\ncooldown_minutes = 0\n"))


def test_drift_triggers_exactly_one_retrain_and_bursts_run_one_at_a_time(
    project: Project, prefect_server: str, served: subprocess.Popen[bytes]
) -> None:
    from prefect.events import emit_event

    from flows.monitor import monitor
    from flows.train import train

    _cooldown_off(project)
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(4000, seed))
    first = train(model="fraud")
    assert first.promoted
    retrain_id = deployment_id(prefect_server, "retrain", "fraud")
    landing = project.fraud_data / "landing"
    landing.mkdir()

    # A clean batch: no drift event, no retrain.
    generate(8000, 31).to_parquet(landing / "clean.parquet", index=False)
    state = monitor(model="fraud", return_state=True)
    assert state.result()[0].drifted == []
    quiet = _events(prefect_server, state.state_details.flow_run_id, expected=2, timeout=5)
    assert [e["event"] for e in quiet] == ["driftline.monitor.ran"]

    # A drifted batch: one event, one retrain run started by the trigger with the batch's fingerprint.
    generate(8000, 32, drift=True).to_parquet(landing / "drifted.parquet", index=False)
    state = monitor(model="fraud", return_state=True)
    (outcome,) = state.result()
    assert outcome.decision.retrain
    events = _events(prefect_server, state.state_details.flow_run_id, expected=2)
    (event,) = [e for e in events if e["event"] != "driftline.monitor.ran"]
    assert event["event"] == "driftline.drift.detected"
    (run,) = _wait_runs(prefect_server, retrain_id, count=1, timeout=180)
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"] == {"model": "fraud", "fingerprint": outcome.fingerprint, "reason": "drift"}
    assert run["created_by"]["type"] == "AUTOMATION"
    registry = open_registry()
    decisions = [d for d in registry.decisions("fraud", limit=50) if d.flow_run_id == run["id"]]
    assert [d.decision for d in decisions] in (
        ["retrain_promoted", "retrain_started"],
        ["retrain_not_better", "retrain_started"],
        ["retrain_rejected", "retrain_started"],
    )
    # Both models were scored on the fixed holdout and on the window's held-out rows, which decided.
    gate = registry.gate_decisions("fraud", limit=1)[0]
    assert gate.evidence["decided_on"] == "recent"
    assert gate.evidence["recent"]["rows"] > 0 and gate.evidence["fixed"]["rows"] > 0
    champion = registry.champion("fraud")
    assert champion is not None
    ledger = registry.ledger("fraud")
    if decisions[0].decision == "retrain_promoted":
        assert len(ledger) == 2 and ledger[-1].reason == decisions[0].reason
        assert ledger[-1].from_version == first.version and ledger[-1].to_version == champion.version
        lineage = registry.version("fraud", champion.version).lineage
        assert lineage.drift_event is not None and lineage.drift_event["fingerprint"] == outcome.fingerprint
        assert len(lineage.window) == 2 and lineage.reason == "drift"
    else:
        assert len(ledger) == 1 and champion.version == first.version

    # A burst of 20 drift events: 20 runs, never two trainings at once, every skip recorded with its reason.
    for index in range(20):
        emit_event(
            event="driftline.drift.detected",
            resource=model_resource("fraud"),
            payload={"fingerprint": outcome.fingerprint, "burst": index},
        )
    runs = _wait_runs(prefect_server, retrain_id, count=21, timeout=420)
    assert len(runs) == 21 and all(r["state_type"] == "COMPLETED" for r in runs)
    burst = {r["id"] for r in runs} - {run["id"]}
    by_run: dict[str, list[Any]] = {}
    for decision in registry.decisions("fraud", limit=500):
        if decision.flow_run_id in burst:
            by_run.setdefault(decision.flow_run_id, []).append(decision)
    assert set(by_run) == burst  # every run left a decision
    skipped = [d for ds in by_run.values() for d in ds if d.decision == "skipped_duplicate"]
    assert skipped and all("is running" in d.reason for d in skipped)
    trainings = sorted((min(d.at for d in ds), max(d.at for d in ds)) for ds in by_run.values() if len(ds) == 2)
    assert trainings, "at least one burst run should have trained"
    for (_, end), (next_start, _) in itertools.pairwise(trainings):
        assert end <= next_start, "two retrains overlapped"
