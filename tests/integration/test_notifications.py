"""On-call notifications end to end: driftline events → Prefect automations → a notification block → HTTP.

A local HTTP receiver on a free loopback port stands in for Slack/Teams behind a CustomWebhookNotificationBlock;
the Prefect server is the session's real one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.examples.fraud import generate
from driftline.runtime.server import free_port
from tests.conftest import Project

pytestmark = pytest.mark.integration


class Receiver:
    """Collects the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if f"docs/runbook.md#{kind}" in m.get("body", "")]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count and time.monotonic() < deadline:
            time.sleep(0.5)
        return self.of(kind)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def notified(project: Project, prefect_server: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Project:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from driftline.oncall.automations import deploy
    from driftline.settings import get_settings
    from driftline.spec import ALERT_KINDS, load_spec

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    monkeypatch.setenv("DRIFTLINE_ACTOR", "oncall-test")
    CustomWebhookNotificationBlock(
        name="receiver", url=receiver.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save("driftline-test-receiver", overwrite=True)
    spec = project.root / "deployments" / "fraud.toml"
    spec.write_text(
        spec.read_text()
        + '\n[notify]\nblocks = ["custom-webhook/driftline-test-receiver"]\ndedupe_minutes = 30\n'
        + "heartbeat_minutes = 0.25\n"
    )
    deployed = deploy(load_spec("fraud"))
    project_id = get_settings().project_id
    kinds = {*ALERT_KINDS, "zombies"}  # one each, and the automation that marks a silent run Crashed
    assert {d.name for d in deployed} == {f"driftline/{project_id}/fraud/{kind}" for kind in kinds}
    return project


def _line(message: dict[str, Any], prefix: str) -> str:
    return next(line for line in message["body"].splitlines() if line.strip().startswith(prefix))


def test_each_alert_arrives_once_with_what_broke_and_what_to_run(notified: Project, receiver: Receiver) -> None:
    from driftline.oncall import events
    from flows.train import train

    runner = CliRunner()
    project = notified
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))

    # A promotion, then a better one (two promotions), then a rejected challenger.
    weak = {"estimator.params.n_estimators": 2, "estimator.params.max_depth": 1, "gate.min_metric": 0.5}
    first = train(model="fraud", overrides=weak)
    second = train(model="fraud")
    assert first.promoted and second.promoted
    (promoted,) = [m for m in receiver.wait_for("model-promoted", 2) if second.version in m["subject"]]
    assert "severity: info" in promoted["body"] and f"version {second.version}" in promoted["body"]
    assert _line(promoted, "run this:") == f"run this: driftline rollback fraud   (back to {first.version})"
    assert "/runs/flow-run/" in _line(promoted, "run:")

    # Not significantly better is the gate working: no page. A regression pages.
    assert not train(model="fraud", overrides={"gate.min_improvement": 0.5}).promoted
    rejected = train(model="fraud", overrides=weak)
    assert not rejected.promoted and rejected.outcome == "regressed"
    (message,) = receiver.wait_for("model-rejected")
    assert f"champion {second.version} stays" in message["subject"] and rejected.decision.reason in message["body"]

    # A corrupt batch: one validation alert naming the file and column, no "run failed" on top of it.
    corrupt = project.write_fraud_batch("corrupt.parquet", generate(500, 3, corrupt=True))
    with pytest.raises(Exception, match=r"DataValidationError|failed"):
        train(model="fraud")
    (invalid,) = receiver.wait_for("validation-failed")
    assert corrupt.name in invalid["subject"] and "severity: error" in invalid["body"]
    assert "column 'amount'" in invalid["body"] or "column '" in invalid["body"]
    assert _line(invalid, "run this:").startswith("run this: driftline replay fraud ")

    # The same breakage again inside the dedupe window: no second message.
    project.write_fraud_batch("corrupt.parquet", generate(500, 3, corrupt=True))
    with pytest.raises(Exception, match=r"DataValidationError|failed"):
        train(model="fraud")

    # A rollback from the CLI: the champion moves back, the ledger has it, on-call hears of it once.
    result = runner.invoke(app, ["rollback", "fraud", "--reason", "flags every card"])
    assert result.exit_code == 0, result.output
    assert f"champion is {first.version} again (was {second.version})" in result.output
    (rolled,) = receiver.wait_for("rolled-back")
    assert f"rolled back to {first.version} (from {second.version}) by oncall-test" in rolled["subject"]
    assert _line(rolled, "run this:") == f"run this: driftline rollback fraud --to {second.version}   (to undo)"

    # A flow that fails for another reason: one "run failed" message with the run's own error and link. A run
    # without the project's tag (another project's run of a model named alike) is not this project's to page.
    nowhere = str(project.root / "nowhere" / "*.parquet")
    untagged = train(model="fraud", data=nowhere, return_state=True)
    with events.run_tags():
        tagged = train(model="fraud", data=nowhere, return_state=True)
    assert untagged.is_failed() and tagged.is_failed() and "no files match" in str(tagged.message)
    (failed,) = receiver.wait_for("run-failed")
    assert _line(failed, "run:").endswith(f"/runs/flow-run/{tagged.state_details.flow_run_id}")
    assert "train-fraud" in failed["subject"] and "Failed" in failed["subject"]
    assert "no files match" in failed["body"]  # this run's error: the validation failures did not page twice
    assert "/runs/flow-run/" in _line(failed, "run:")

    time.sleep(3)  # anything late would arrive now
    assert len(receiver.of("validation-failed")) == 1
    assert len(receiver.of("rolled-back")) == 1 and len(receiver.of("run-failed")) == 1
    assert len(receiver.of("model-rejected")) == 1


def test_a_drifted_batch_alerts_with_the_top_columns_and_the_report(notified: Project, receiver: Receiver) -> None:
    from flows.monitor import monitor
    from flows.train import train

    project = notified
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))
    assert train(model="fraud").promoted
    landing = project.fraud_data / "landing"
    landing.mkdir()
    generate(8000, 21, drift=True).to_parquet(landing / "drifted.parquet", index=False)
    (outcome,) = monitor(model="fraud")
    assert "amount" in outcome.drifted
    (message,) = receiver.wait_for("drift-detected")
    assert "amount" in message["subject"] and "severity: warning" in message["body"]
    assert "amount (feature): hellinger" in message["body"] and "report: file://" in message["body"]
    assert _line(message, "run this:").startswith("run this: driftline drift fraud")


def test_a_monitor_that_stopped_trips_the_dead_mans_switch(notified: Project, receiver: Receiver) -> None:
    from flows.monitor import monitor

    monitor(model="fraud")  # no champion yet: the run still counts as a heartbeat
    # notify.heartbeat_minutes = 0.25: after 15 s without a monitor run, the proactive trigger fires.
    (message,) = receiver.wait_for("heartbeat", timeout=90)
    assert "the monitor has not run for 0.25 minutes" in message["subject"]
    assert _line(message, "run this:").startswith("run this: driftline monitor fraud")


def test_a_run_whose_process_died_ends_crashed_and_pages_run_failed(notified: Project, receiver: Receiver) -> None:
    import subprocess
    import sys

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from driftline.oncall import events
    from driftline.runtime.zombies import Holder, reconcile

    @flow(name="train")
    def placeholder() -> None:
        pass

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    holder = Holder(Holder.this_process().host, gone.pid, None)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            placeholder, name="train-fraud", tags=[events.project_tag(), holder.tag], state=Running()
        )
    (crashed,) = reconcile()
    assert crashed.run_id == str(run.id)
    (message,) = receiver.wait_for("run-failed")
    assert "train-fraud Crashed" in message["subject"]
    assert f"pid {gone.pid}) is gone" in message["body"]
    assert _line(message, "run:").endswith(f"/runs/flow-run/{run.id}")
