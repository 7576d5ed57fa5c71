"""``driftline serve`` supervises its ``bentoml serve``: a service that cannot start exits with the reason, port freed.

Left alone, a worker that cannot load its model crash-loops while ``/readyz`` hangs and the port stays bound. So the
service reports why it cannot start (:func:`report_startup_failure`: one log line, and the reason written to the
file named by ``DRIFTLINE_SERVE_FAILURE``), and :func:`supervise`, which started ``bentoml serve`` in a process
group of its own, stops the whole group at once and raises the reason. The same happens if ``bentoml serve`` exits
by itself, or is not ready within the start timeout. Ctrl-C or SIGTERM stop the group and return cleanly; a
watchdog in the group stops it if the supervisor itself is killed.

No BentoML here: the supervisor imports nothing heavy, and the service imports only :func:`report_startup_failure`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

import httpx

from driftline.errors import StoreError
from driftline.runtime.processes import stop_group, watch

FAILURE_ENV = "DRIFTLINE_SERVE_FAILURE"
logger = logging.getLogger("driftline.service")


def report_startup_failure(reason: str) -> None:
    """Say why this service cannot start: one log line, and the reason for the supervisor (if there is one)."""
    reason = " ".join(reason.split())
    logger.critical("driftline: the service cannot start: %s", reason)
    path = os.environ.get(FAILURE_ENV)
    if path:
        with contextlib.suppress(OSError):  # the supervisor still sees the worker never become ready
            Path(path).write_text(reason)


def supervise(
    command: Sequence[str],
    env: Mapping[str, str],
    url: str,
    *,
    what: str,
    start_timeout: float = 120.0,
    poll: float = 0.2,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Run ``command`` (a ``bentoml serve`` answering on ``url``) until it is stopped; return its exit code.

    Raise StoreError ``<what>: the service cannot start: <reason>`` if it reports a startup failure, exits by
    itself, or is not ready within ``start_timeout`` seconds; its whole process group is stopped first.
    """
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    with tempfile.TemporaryDirectory(prefix="driftline-serve-") as folder:
        failure = Path(folder) / "failure"
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        # Its own process group (this session: the watchdog must join it), so one signal stops the workers too.
        process = subprocess.Popen(
            list(command), env={**env, FAILURE_ENV: str(failure)}, stdin=subprocess.DEVNULL, process_group=0
        )
        watchdog = watch(process.pid)
        try:
            reason = _watch(process, url, failure, stopping, start_timeout, poll, on_ready)
        finally:
            stop_group(process, timeout=10)
            try:
                watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if reason is not None:
        raise StoreError(f"{what}: the service cannot start: {reason}")
    return 0 if stopping else process.returncode


def _watch(
    process: subprocess.Popen[bytes],
    url: str,
    failure: Path,
    stopping: list[int],
    start_timeout: float,
    poll: float,
    on_ready: Callable[[], None] | None,
) -> str | None:
    """Wait until the service is stopped (None) or fails (the reason)."""
    deadline = time.monotonic() + start_timeout
    ready = False
    with httpx.Client(timeout=2) as client:
        while not stopping:
            reported = failure.read_text().strip() if failure.exists() else ""
            if reported:
                return reported
            code = process.poll()
            if code is not None:
                return f"bentoml serve exited with code {code}" + ("" if ready else " before it was ready")
            if not ready:
                with contextlib.suppress(httpx.HTTPError):
                    ready = client.get(f"{url}/readyz").status_code == 200
                if ready and on_ready is not None:
                    on_ready()
                if not ready and time.monotonic() > deadline:
                    return f"not ready within {start_timeout:g} s"
            time.sleep(poll)
    return None
