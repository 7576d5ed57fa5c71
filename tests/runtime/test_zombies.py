"""Runs whose process died end Crashed: the reconcile at a CLI command's start, and the heartbeat automation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from driftline.oncall import events
from driftline.runtime.zombies import HOLDER_TAG_PREFIX, Holder, reconcile, start_time


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_holder_tag_names_host_pid_and_start_and_reads_back() -> None:
    me = Holder.this_process()
    assert me.tag == f"{HOLDER_TAG_PREFIX}{socket.gethostname()}:{os.getpid()}@{start_time(os.getpid())}"
    assert Holder.parse(me.tag) == me
    assert Holder.parse("driftline-holder:host:12") == Holder("host", 12, None)
    for other in ("driftline", "driftline-holder:", "driftline-holder:host:x", "driftline-holder:host:1@y"):
        assert Holder.parse(other) is None


def test_the_holder_is_alive_only_while_its_own_process_runs() -> None:
    host = socket.gethostname()
    assert Holder.this_process().alive()
    assert not Holder(host, _dead_pid(), None).alive()
    me = Holder.this_process()
    assert me.start is not None
    assert not Holder(host, os.getpid(), me.start + 1).alive()  # the pid is reused by another process: not the holder
    assert Holder("another-host", _dead_pid(), None).alive()  # elsewhere: left to the heartbeat automation


def test_a_killed_but_unreaped_process_counts_as_gone() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = Holder(socket.gethostname(), process.pid, start_time(process.pid))
    assert holder.alive()
    process.kill()
    time.sleep(0.5)  # a zombie now: not reaped yet
    try:
        assert not holder.alive()
    finally:
        process.wait()


@pytest.fixture
def api(prefect_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    with get_client(sync_client=True) as client:
        yield client


def _running_run(client: Any, name: str, tags: list[str]) -> str:
    from prefect import flow
    from prefect.states import Running

    @flow(name=name.split("-")[0])
    def placeholder() -> None:
        pass

    run = client.create_flow_run(placeholder, name=name, tags=tags, state=Running())
    return str(run.id)


def _state(client: Any, run_id: str) -> str:
    return str(client.read_flow_run(run_id).state.type.value)


@pytest.mark.integration
def test_reconcile_crashes_the_projects_runs_whose_holder_died_and_no_others(api: Any) -> None:
    project, other = "zombies-a", "zombies-b"
    dead = Holder(socket.gethostname(), _dead_pid(), None).tag
    zombie = _running_run(api, "train-fraud", [events.project_tag(project), dead])
    live = _running_run(api, "monitor-fraud", [events.project_tag(project), Holder.this_process().tag])
    deployment_run = _running_run(api, "retrain-fraud", [events.project_tag(project)])  # no holder: heartbeats judge
    elsewhere = _running_run(api, "train-fraud", [events.project_tag(other), dead])

    crashed = reconcile(project)

    assert [c.run_id for c in crashed] == [zombie]
    assert _state(api, zombie) == "CRASHED"
    assert "is gone" in str(api.read_flow_run(zombie).state.message)
    assert {_state(api, run) for run in (live, deployment_run, elsewhere)} == {"RUNNING"}
    assert reconcile(project) == []  # once is enough


@pytest.mark.integration
def test_a_run_that_stops_sending_heartbeats_is_marked_crashed_by_the_automation(api: Any) -> None:
    from prefect.events import emit_event

    from driftline.oncall.automations import zombie_automation

    project = "zombies-c"
    automation = api.create_automation(zombie_automation("fraud", project, within=timedelta(seconds=10)))
    try:
        silent = _running_run(api, "train-fraud", [events.project_tag(project)])
        finished = _running_run(api, "monitor-fraud", [events.project_tag(project)])
        other_model = _running_run(api, "train-churn", [events.project_tag(project)])
        for run_id, name in ((silent, "train-fraud"), (finished, "monitor-fraud"), (other_model, "train-churn")):
            emit_event(
                event="prefect.flow-run.heartbeat",
                resource={"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.name": name},
                related=[
                    {"prefect.resource.id": events.project_tag_resource_id(project), "prefect.resource.role": "tag"}
                ],
            )
        from prefect.states import Completed

        api.set_flow_run_state(finished, Completed(), force=True)  # a final state answers the heartbeat

        deadline = time.monotonic() + 90
        while _state(api, silent) != "CRASHED" and time.monotonic() < deadline:
            time.sleep(1)
        assert _state(api, silent) == "CRASHED"
        assert "no heartbeat" in str(api.read_flow_run(silent).state.message)
        assert _state(api, finished) == "COMPLETED"
        assert _state(api, other_model) == "RUNNING"  # another model's run is not this automation's
    finally:
        api.delete_automation(automation)
