"""Stopping the child processes driftline starts (runners, services) together with their own children."""

from __future__ import annotations

import os
import signal
import subprocess


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
