"""Flow runs whose process died: marked Crashed, so on-call hears of them (``run_failed``) and none stays Running.

Two mechanisms, one for each way a run is started:

- **Runs started from the CLI** (``driftline train|monitor|retrain``) carry a holder tag,
  ``driftline-holder:<host>:<pid>@<start>`` (``<start>`` is the process's start time, so a reused pid is not
  mistaken for the holder). At the start of every such command, :func:`reconcile` marks Crashed each of the project's
  runs still Pending, Running or Cancelling whose holder on this host is gone. This is immediate, and needs nothing
  but the next command.
- **Every run, deployment runs included**, sends Prefect's flow-run heartbeat (``prefect.flow-run.heartbeat``,
  every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds; driftline sets 60 unless the user has set it).
  ``driftline deploy`` installs a Prefect automation per model, ``driftline/<project>/<model>/zombies``
  (``driftline.oncall.automations.zombie_automation``): a proactive trigger that fires when a run of the model sent
  a heartbeat and then neither another heartbeat nor a final state within three heartbeat periods, and changes that
  run's state to Crashed. This covers runs on any host, a runner that died, and a machine that went away.

Either way the run ends Crashed, which Prefect announces as ``prefect.flow-run.Crashed``: the ``run_failed``
automation pages on it.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from driftline.oncall import events

HOLDER_TAG_PREFIX = events.HOLDER_TAG_PREFIX
HEARTBEAT_SECONDS = 60  # driftline's default for PREFECT_FLOWS_HEARTBEAT_FREQUENCY (Prefect's own is 180)
UNFINISHED = ("PENDING", "RUNNING", "CANCELLING")
_PAGE = 200  # the most flow runs the API returns at once


@dataclass(frozen=True)
class Holder:
    """The process a CLI-started run lives in: host, pid and the pid's start time (clock ticks since boot)."""

    host: str
    pid: int
    start: int | None

    @property
    def tag(self) -> str:
        return f"{HOLDER_TAG_PREFIX}{self.host}:{self.pid}" + (f"@{self.start}" if self.start is not None else "")

    @classmethod
    def parse(cls, tag: str) -> Holder | None:
        """The holder a tag names, or None for any other tag (or one that does not parse)."""
        if not tag.startswith(HOLDER_TAG_PREFIX):
            return None
        host, _, rest = tag.removeprefix(HOLDER_TAG_PREFIX).rpartition(":")
        pid, _, start = rest.partition("@")
        if not host or not pid.isdigit() or (start and not start.isdigit()):
            return None
        return cls(host, int(pid), int(start) if start else None)

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), start_time(os.getpid()))

    def alive(self) -> bool:
        """Whether the holder still runs (on this host; one elsewhere is assumed alive: the heartbeat judges it)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process with this pid: it exists
        started = start_time(self.pid)
        if started == 0:
            return False  # killed, waiting to be reaped
        return self.start is None or started is None or started == self.start  # another start: the pid was reused


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); 0 for a zombie or a process
    that is gone, None where there is no /proc to ask."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return 0 if os.path.isdir("/proc/self") else None
    except OSError:
        return None
    if fields[0] == b"Z":
        return 0
    return int(fields[19])  # fields after "comm)" start at field 3 (state); starttime is field 22


@contextmanager
def holding() -> Iterator[str]:
    """Tag the flow runs started inside with this process as their holder (for :func:`reconcile`)."""
    from prefect import tags

    tag = Holder.this_process().tag
    with tags(tag):
        yield tag


@dataclass(frozen=True)
class Crashed:
    run_id: str
    name: str
    holder: str


def reconcile(project: str | None = None) -> list[Crashed]:
    """Mark Crashed the project's unfinished flow runs whose holder process on this host is gone; return them.

    Runs without a holder tag (deployment runs) and runs held on other hosts are left to the heartbeat automation.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Crashed as CrashedState

    run_filter = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in UNFINISHED])),
        tags=FlowRunFilterTags(all_=[events.project_tag(project)]),
    )
    crashed = []
    with get_client(sync_client=True) as client:
        # Sort given because the sync client's default (None) is refused by the server with a 422.
        runs = []
        for offset in itertools.count(0, _PAGE):  # every page first: crashing runs would shift the offsets
            page = client.read_flow_runs(
                flow_run_filter=run_filter, sort=FlowRunSort.START_TIME_ASC, limit=_PAGE, offset=offset
            )
            runs += page
            if len(page) < _PAGE:
                break
        for run in runs:
            holders = [h for h in (Holder.parse(tag) for tag in run.tags) if h is not None]
            if not holders or holders[0].alive():
                continue
            holder = holders[0]
            message = (
                f"driftline: the process that ran this flow ({holder.host} pid {holder.pid}) is gone; marked Crashed "
                "by the next driftline command on that host. Nothing it did after its last completed step counts; "
                "a crash never changes the champion"
            )
            client.set_flow_run_state(run.id, CrashedState(message=message), force=True)
            crashed.append(Crashed(str(run.id), run.name, holder.tag))
    return crashed


def default_heartbeat() -> None:
    """Make flow runs of this process (and the runners it starts) send heartbeats every 60 s unless the user chose."""
    if not os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY") and not os.environ.get(
        "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"
    ):
        os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(HEARTBEAT_SECONDS)
