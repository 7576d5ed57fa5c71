"""Starting and stopping the child processes driftline runs (servers, runners, services) with their own children.

Every child starts in a process group of its own, its output in a log file and no terminal input, so stopping the
group stops whatever it started too (``bentoml serve`` workers, a runner's flow runs).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def launch(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    append: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, stdout and stderr into ``log_path``; stop it with ``stop_group``.

    ``env`` replaces the environment (default: this process's); ``append`` keeps what the log already holds.
    """
    with log_path.open("ab" if append else "wb") as log:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop_group ends it and its children
        )


@contextmanager
def launched(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` as ``launch`` does for the ``with`` block; stop its group on the way out, however it leaves."""
    process = launch(command, log_path, env=env, cwd=cwd)
    try:
        yield process
    finally:
        stop_group(process)


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


def bentoml_command() -> str:
    """The ``bentoml`` executable of this interpreter's environment (the one on PATH if it has none)."""
    return shutil.which("bentoml", path=os.path.dirname(sys.executable)) or "bentoml"


def spawn(
    models: list[str], cwd: Path, log_path: Path, poll_seconds: float = 10.0, limit: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``driftline serve-flows MODELS`` in its own process group (for the demo, the bench and tests)."""
    env = {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": f"{poll_seconds:g}"}
    command = [sys.executable, "-m", "driftline.cli", "serve-flows", *models]
    if limit is not None:
        command += ["--limit", str(limit)]
    return launch(command, log_path, env=env, cwd=cwd)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a spawned runner: Ctrl-C first (it finishes cleanly), then kill its process group."""
    stop_group(process, signal.SIGINT, timeout)
