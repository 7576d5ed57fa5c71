"""A watchdog that stops a child's process group when the process that started it dies, even by SIGKILL.

``python -m driftline.runtime.watchdog PARENT_PID`` runs inside the child's process group (``processes.launch``
starts it there with ``die_with_parent=True``). It waits for PARENT_PID to end — on a pidfd where Linux has one, so it
wakes at once and a reused pid cannot fool it, else by polling its own parent pid — then sends SIGTERM to the group,
waits ``grace`` seconds and sends SIGKILL, which ends the watchdog with the rest. While the parent lives, the watchdog
dies with the group like any member: ``stop_group`` stops it too.

Why a watchdog and not only ``prctl(PR_SET_PDEATHSIG)``: the parent-death signal reaches the direct child alone (not
``bentoml serve``'s workers), and Linux sends it when the *thread* that forked the child ends, which in a Prefect task
may be a worker thread long before the run ends (and ``preexec_fn`` is unsafe in a threaded process). When the rest
of the group has ended on its own, the watchdog ends too.

It imports the standard library only: it starts in a few tens of milliseconds and costs about 10 MB.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.2
_CHECK_SECONDS = 2.0  # how often, while the parent lives, it looks whether the group it guards is still there


def _wait_for_death(parent: int) -> bool:
    """Return True once ``parent`` has ended, False if the rest of this group ended first (nothing to guard)."""
    group = os.getpgrp()
    try:
        fd = os.pidfd_open(parent)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux) or the parent is already gone
        fd = None
    try:
        while True:
            if fd is None:
                if os.getppid() != parent:
                    return True
                time.sleep(_CHECK_SECONDS)
            elif select.select([fd], [], [], _CHECK_SECONDS)[0]:
                return True
            if not _group_alive(group):
                return False
    finally:
        if fd is not None:
            os.close(fd)


def _group_alive(group: int) -> bool:
    """Whether a process other than this one is left in ``group``."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # cannot tell: let the SIGKILL decide
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != b"Z":  # fields after "comm)": state, ppid, pgrp
            return True
    return False


def stop_own_group(grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the rest of this process's group, SIGKILL it after ``grace`` seconds; this process ends with it."""
    group = os.getpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the SIGTERM is for the others
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(group):
        time.sleep(_POLL_SECONDS)
    os.killpg(group, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m driftline.runtime.watchdog PARENT_PID", file=sys.stderr)
        return 2
    if _wait_for_death(int(argv[0])):
        stop_own_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
