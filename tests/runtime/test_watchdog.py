"""Children started with die_with_parent die with their parent, SIGKILL included; stopped normally, nothing lingers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from driftline.runtime import watchdog
from driftline.runtime.processes import launched
from driftline.runtime.server import free_port, port_free

# A child that starts a grandchild listening on PORT (as `bentoml serve` starts workers), prints both pids, waits.
CHILD = textwrap.dedent(
    """
    import socket, subprocess, sys, time
    port = int(sys.argv[1])
    server = "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    server += f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(3600)"
    worker = subprocess.Popen([sys.executable, "-c", server])
    print("pids", worker.pid, flush=True)
    time.sleep(3600)
    """
)

# A parent that starts the child with die_with_parent (through launched) and says where things are, then waits.
PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from driftline.runtime.processes import launched
    child, port, log = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with launched([sys.executable, child, port], log) as process:
        print("child", process.pid, flush=True)
        time.sleep(3600)
    """
)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _worker_pid(log: Path, timeout: float = 30) -> int:
    assert _wait_until(lambda: "pids" in (log.read_text() if log.exists() else ""), timeout), "child never started"
    return int(log.read_text().split()[1])


def test_sigkill_of_the_parent_stops_child_and_grandchild_and_frees_the_port(tmp_path: Path) -> None:
    child_script = tmp_path / "child.py"
    child_script.write_text(CHILD)
    port = free_port()
    log = tmp_path / "child.log"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(child_script), str(port), str(log)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline().split()[1])
        worker = _worker_pid(log)
        assert _wait_until(lambda: not port_free(port), 30), "the grandchild never listened"
        assert os.getpgid(child) == child and os.getpgid(worker) == child  # their own group, not the parent's

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()

        assert _wait_until(lambda: not _alive(child) and not _alive(worker), 10), "an orphan survived its parent"
        assert _wait_until(lambda: port_free(port), 5), f"port {port} still held"
        assert _wait_until(lambda: not any(_alive(pid) for pid in _group(child)), 5), "the watchdog outlived the group"
    finally:
        for group in (parent.pid, child):
            try:
                if group is not None:
                    os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def _group(group: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    if int(stat.read().rsplit(b")", 1)[1].split()[2]) == group:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_a_normal_stop_leaves_no_watchdog_behind(tmp_path: Path) -> None:
    with launched([sys.executable, "-c", "import time; time.sleep(3600)"], tmp_path / "sleep.log") as process:
        group = process.pid
        assert _wait_until(lambda: len([p for p in _group(group) if _alive(p)]) == 2, 10), "no watchdog in the group"
    assert _wait_until(lambda: not any(_alive(pid) for pid in _group(group)), 5)


def test_the_watchdog_leaves_when_the_group_it_guards_has_gone(tmp_path: Path) -> None:
    # A group of one short-lived member: the watchdog notices it is alone and exits instead of waiting for us.
    member = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"], process_group=0)
    guard = subprocess.Popen(
        [sys.executable, "-m", "driftline.runtime.watchdog", str(os.getpid())], process_group=member.pid
    )
    member.wait()
    try:
        assert guard.wait(timeout=10) == 0
    finally:
        if guard.poll() is None:
            guard.kill()
            guard.wait()


def test_usage_is_refused_without_a_parent_pid() -> None:
    assert watchdog.main([]) == 2
    assert watchdog.main(["x"]) == 2
