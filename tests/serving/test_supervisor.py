"""`driftline serve`'s supervisor, around stand-in servers (the real one: tests/reliability/test_serve_start.py)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from driftline.errors import StoreError
from driftline.runtime.server import free_port
from driftline.serving.supervisor import FAILURE_ENV, report_startup_failure, supervise

# A stand-in for bentoml serve: a child of its own (a "worker") in its group, and a readiness probe on the port.
SERVER = """
import http.server, os, subprocess, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[3], "w").write(str(worker.pid))
if mode == "fail":
    time.sleep(0.5)
    open(os.environ["DRIFTLINE_SERVE_FAILURE"], "w").write("cannot load model m:v: UnpicklingError: bad")
    time.sleep(300)
if mode == "exit":
    sys.exit(3)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if mode == "ready" else 503); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
"""


def _run(tmp_path: Path, mode: str, timeout: float = 30.0) -> tuple[int | StoreError, float, int]:
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    worker_file = tmp_path / "worker.pid"
    command = [sys.executable, str(script), str(port), mode, str(worker_file)]
    start = time.monotonic()
    try:
        outcome: int | StoreError = supervise(
            command, os.environ, f"http://127.0.0.1:{port}", what="m:v", start_timeout=timeout
        )
    except StoreError as error:
        outcome = error
    return outcome, time.monotonic() - start, int(worker_file.read_text())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie until its parent reaps it: dead all the same.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_reported_failure_stops_the_group_at_once_with_the_reason(tmp_path: Path) -> None:
    outcome, took, worker = _run(tmp_path, "fail")
    assert isinstance(outcome, StoreError)
    assert str(outcome) == "m:v: the service cannot start: cannot load model m:v: UnpicklingError: bad"
    assert took < 10
    time.sleep(0.5)
    assert _gone(worker)  # the whole group, not just the child it started


def test_a_server_that_exits_or_never_gets_ready_is_a_failure(tmp_path: Path) -> None:
    outcome, _, _ = _run(tmp_path, "exit")
    assert isinstance(outcome, StoreError) and "bentoml serve exited with code 3 before it was ready" in str(outcome)
    outcome, took, worker = _run(tmp_path, "never", timeout=2)
    assert isinstance(outcome, StoreError) and str(outcome).endswith("the service cannot start: not ready within 2 s")
    assert took < 15
    time.sleep(0.5)
    assert _gone(worker)


def test_sigterm_stops_a_ready_server_cleanly(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        outcome, _, worker = _run(tmp_path, "ready")
    finally:
        timer.cancel()
    assert outcome == 0
    time.sleep(0.5)
    assert _gone(worker)
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back


def test_the_service_side_writes_one_line_for_the_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failure = tmp_path / "failure"
    monkeypatch.setenv(FAILURE_ENV, str(failure))
    report_startup_failure("cannot load model m:v:\n  KeyError: 31")
    assert failure.read_text() == "cannot load model m:v: KeyError: 31"
    assert caplog.records[0].getMessage() == "driftline: the service cannot start: cannot load model m:v: KeyError: 31"
    monkeypatch.delenv(FAILURE_ENV)
    report_startup_failure("again")  # unsupervised: the log line only
