"""Stopping the child processes driftline starts (runners, services) together with their own children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def stop_group(process: subprocess.Popen[bytes], first: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal the process group (the process was started with ``start_new_session=True``); kill it if it lingers."""
    try:
        os.killpg(process.pid, first)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def spawn(
    models: list[str], cwd: Path, log_path: Path, poll_seconds: float = 10.0, limit: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``driftline serve-flows MODELS`` in its own process group (for the demo, the bench and tests)."""
    env = {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": f"{poll_seconds:g}"}
    command = [sys.executable, "-m", "driftline.cli", "serve-flows", *models]
    if limit is not None:
        command += ["--limit", str(limit)]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a spawned runner: Ctrl-C first (it finishes cleanly), then kill its process group."""
    stop_group(process, signal.SIGINT, timeout)
