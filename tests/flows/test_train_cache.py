"""A rerun of the train flow on unchanged input: validation, profile and fit come from the cache, across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any
from uuid import UUID

import httpx
import pytest

from driftline.examples.fraud import generate
from tests.conftest import REPO, Project

pytestmark = pytest.mark.integration

# A gate no model passes keeps the run from promoting, so the rerun is not `unchanged` and goes on to the fit.
KEPT = {"gate.min_metric": 0.9999, "serving.check": False}
CACHED_TASKS = ("validate-batch", "profile-batch", "fit-model")

_FIRST_RUN = f"""
from flows.train import train
outcome = train(model="fraud", overrides={KEPT!r})
assert not outcome.promoted, outcome
"""


def _task_states(api: str, flow_run_id: UUID, expected: int, timeout: float = 120.0) -> dict[str, str]:
    """The state name of each task run of a flow run, by task name, polled until ``expected`` are final (task run
    states reach the server asynchronously)."""
    body = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}, "limit": 200}
    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        runs = httpx.post(f"{api}/task_runs/filter", json=body, timeout=10).json()
        states = {
            run["name"].rsplit("-", 1)[0]: run["state"]["name"]
            for run in runs
            if run.get("state") and run["state"]["type"] in final
        }
        if sum(name in states for name in CACHED_TASKS) >= expected:
            break
        time.sleep(0.5)
    return states


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the calls into the logic that the cached tasks make."""
    from driftline.loop import profiles, training, validation

    calls: Counter[str] = Counter()
    for module, name in ((validation, "validate"), (profiles, "profile_batch"), (training, "fit")):
        original = getattr(module, name)

        def counted(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_a_rerun_on_unchanged_input_in_another_process_hits_the_cache_for_every_cached_task(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.train import train

    project.write_fraud_batch("batch-1.parquet", generate(1500, seed=31))
    project.write_fraud_batch("batch-2.parquet", generate(1500, seed=32))
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    subprocess.run([sys.executable, "-c", _FIRST_RUN], env=env, cwd=REPO, check=True, timeout=600)
    calls = _count_calls(monkeypatch)

    state = train(model="fraud", overrides=KEPT, return_state=True)

    assert state.is_completed(), state.message
    assert not state.result().promoted
    assert calls == Counter()  # no validation, profile or fit was computed again
    states = _task_states(prefect_server, state.state_details.flow_run_id, len(CACHED_TASKS))
    assert {name: states.get(name) for name in CACHED_TASKS} == dict.fromkeys(CACHED_TASKS, "Cached")


def test_a_changed_batch_suite_or_spec_is_a_miss(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.train import train

    project.write_fraud_batch("batch-1.parquet", generate(1500, seed=33))
    assert not train(model="fraud", overrides=KEPT).promoted
    calls = _count_calls(monkeypatch)

    # The spec: another estimator parameter trains another model (and the spec's digest keys validation too).
    assert not train(model="fraud", overrides={**KEPT, "estimator.params.max_depth": 3}).promoted
    assert calls == Counter({"validate": 1, "profile_batch": 1, "fit": 1})

    # The suite: an edit (here, to its meta) is a new digest, so the batch is validated again.
    suite = project.root / "expectations" / "fraud.json"
    content = json.loads(suite.read_text())
    content["meta"] = {**content.get("meta", {}), "edited": True}
    suite.write_text(json.dumps(content, indent=2))
    calls.clear()
    assert not train(model="fraud", overrides=KEPT).promoted
    assert calls == Counter({"validate": 1, "profile_batch": 1, "fit": 1})

    # The data: one more row is a new fingerprint.
    project.write_fraud_batch("batch-2.parquet", generate(200, seed=34))
    calls.clear()
    assert not train(model="fraud", overrides=KEPT).promoted
    assert calls == Counter({"validate": 1, "profile_batch": 1, "fit": 1})  # batch-1 is still a hit
