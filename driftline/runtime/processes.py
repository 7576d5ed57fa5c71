"""Starting and stopping the child processes driftline runs (servers, runners, services) with their own children.

Every child starts in a process group of its own, its output in a log file and no terminal input, so stopping the
group stops whatever it started too (``bentoml serve`` workers, a runner's flow runs).

A child started with ``die_with_parent=True`` also dies with this process, however this process ends (SIGKILL
included): a watchdog (``driftline.runtime.watchdog``) joins the child's group and stops the group when this process
is gone, so a killed run never leaves a ``bentoml serve`` holding its port and memory. The managed Prefect server is
started without it on purpose: it outlives the command that started it and is reused.
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
from typing import Any

# The watchdog of each child started with die_with_parent, by the child's pid: stop_group reaps it.
_watchdogs: dict[int, subprocess.Popen[bytes]] = {}


def launch(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    append: bool = False,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, stdout and stderr into ``log_path``; stop it with ``stop_group``.

    ``env`` replaces the environment (default: this process's); ``append`` keeps what the log already holds;
    ``die_with_parent`` puts a watchdog in the group that stops it if this process dies first.
    """
    # Its own process group, so stop_group ends it and its children: in a session of its own, or, with a watchdog,
    # in this session (a process may only join a group of its own session).
    grouping: dict[str, Any] = {"process_group": 0} if die_with_parent else {"start_new_session": True}
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **grouping,
        )
    if die_with_parent:
        _watchdogs[process.pid] = watch(process.pid)
    return process


def watch(group: int) -> subprocess.Popen[bytes]:
    """Start a watchdog inside process group ``group`` that stops the group when this process dies."""
    return subprocess.Popen(
        [sys.executable, "-m", "driftline.runtime.watchdog", str(os.getpid())],
        cwd=Path(__file__).resolve().parents[2],  # where this driftline package is importable from
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=group,
    )


@contextmanager
def launched(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` as ``launch`` does for the ``with`` block; stop its group on the way out, however it leaves.

    The group dies with this process too (``die_with_parent``), even if this process is killed inside the block.
    """
    process = launch(command, log_path, env=env, cwd=cwd, die_with_parent=True)
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes], first: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal the process group (``launch`` gave the process one of its own); kill it if it lingers."""
    watchdog = _watchdogs.pop(process.pid, None)
    try:
        try:
            os.killpg(process.pid, first)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        if watchdog is not None:  # in the group, so signalled with it; SIGKILL if SIGINT left it waiting
            try:
                watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()


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
    return launch(command, log_path, env=env, cwd=cwd, die_with_parent=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a spawned runner: Ctrl-C first (it finishes cleanly), then kill its process group."""
    stop_group(process, signal.SIGINT, timeout)
