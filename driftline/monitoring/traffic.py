"""Live-traffic profiles: the service profiles the rows it serves in fixed windows; the monitor scores them.

The service side is :class:`TrafficProfiler`. A request only appends its rows, stamped with the time, to a queue
(a lock and a list append); a background thread turns the queue into a frame about once a second and feeds it to
the whylogs profile of the window the rows were served in; when a window's time is up it writes the profile to
the store. Windows are aligned
to the clock (a 60-minute window starts on the hour), so every worker of a service, and every replica, cuts the
same windows. Each process writes its own part::

    <profile store>/<model>/traffic/<version>/<window start, UTC>/<host>-<pid>.bin

The monitor side is :func:`closed_windows` and :func:`merge_window`: a window whose end is past (plus a grace
period for the last writes) is merged across its parts into one profile, ``<model>/window/<version>-<start>.bin``,
and scored against the reference exactly as a batch's profile is.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from driftline.libs import lazy_module
from driftline.loop import profiles
from driftline.loop.statuses import BatchStatus

if TYPE_CHECKING:
    import pandas as pd

    from driftline.registry import Registry
else:
    pd = lazy_module("pandas")

logger = logging.getLogger("driftline.traffic")

STAMP = "%Y%m%dT%H%M%SZ"
PREDICTION_COLUMN = "prediction"


def window_start(now: float, seconds: float) -> float:
    """The start (epoch seconds) of the clock-aligned window holding ``now``."""
    return (now // seconds) * seconds


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(STAMP)


def part_path(store: str, model: str, version: str, start: float) -> str:
    name = f"{socket.gethostname()}-{os.getpid()}"
    return f"{store.rstrip('/')}/{model}/traffic/{version}/{stamp(start)}/{name}.bin"


@dataclass
class ProfilerStatus:
    """What the profiler has done, for the service's health endpoint."""

    window_seconds: float
    window_start: str | None = None
    rows_in_window: int = 0
    windows_written: int = 0
    rows_dropped: int = 0
    last_written: str | None = None
    last_error: str | None = None


class TrafficProfiler:
    """Profile served rows (and their predictions) in clock-aligned windows, off the request path."""

    def __init__(
        self,
        store: str,
        model: str,
        version: str,
        window_seconds: float,
        *,
        max_pending_rows: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.model, self.version = store, model, version
        self.window_seconds = window_seconds
        self.max_pending_rows = max_pending_rows
        self.clock = clock
        self.status = ProfilerStatus(window_seconds=window_seconds)
        self._lock = threading.Lock()
        self._queue: list[tuple[float, list[dict[str, Any]], list[Any]]] = []  # (served at, rows, predictions)
        self._queued_rows = 0
        self._profile: Any = None
        self._start: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftline-traffic-profiler", daemon=True)

    def start(self) -> TrafficProfiler:
        from driftline import libs

        libs.whylogs()  # import it now, while the service starts, not under the first requests' load
        self._thread.start()
        return self

    def observe(self, rows: list[dict[str, Any]], predictions: list[Any]) -> None:
        """Queue served rows for profiling, never waiting on whylogs; past the queue's bound, count them as dropped."""
        with self._lock:
            if self._queued_rows + len(rows) > self.max_pending_rows:
                self.status.rows_dropped += len(rows)
                return
            self._queue.append((self.clock(), rows, predictions))
            self._queued_rows += len(rows)

    def close(self) -> None:
        """Profile what is queued and write the current (partial) window; the service calls this on shutdown."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._absorb()
        self._write()

    def _run(self) -> None:
        while not self._stop.wait(self._tick()):
            pass

    def _tick(self) -> float:
        """One pass of the background thread: write the window if its time is up, profile the queue; return the wait."""
        now = self.clock()
        if self._start is not None and now >= self._start + self.window_seconds:
            self._write()
        self._absorb()
        return 1.0 if self._start is None else min(1.0, max(0.01, self._start + self.window_seconds - now))

    def _absorb(self) -> None:
        """Profile the queued rows into the window of the moment they were served, closing windows as time passes."""
        with self._lock:
            queue, self._queue, self._queued_rows = self._queue, [], 0
        groups: dict[float, list[tuple[list[dict[str, Any]], list[Any]]]] = {}
        for served_at, rows, predictions in queue:
            groups.setdefault(window_start(served_at, self.window_seconds), []).append((rows, predictions))
        for start in sorted(groups):
            if self._start is not None and start > self._start:
                self._write()
            self._track(start if self._start is None else self._start, groups[start])

    def _track(self, start: float, entries: list[tuple[list[dict[str, Any]], list[Any]]]) -> None:
        rows = sum(len(batch) for batch, _ in entries)
        try:
            frame = pd.DataFrame.from_records([dict(row) for batch, _ in entries for row in batch])
            frame[PREDICTION_COLUMN] = [p for _, predictions in entries for p in predictions]
            if self._profile is None:
                self._start = start
                self._profile = profiles.new_profile(datetime.fromtimestamp(start, UTC))
                self.status.window_start = stamp(start)
                self.status.rows_in_window = 0
            self._profile.track(pandas=profiles.prepare(frame))
            self.status.rows_in_window += rows
        except Exception as error:  # profiling must never take the service down
            self.status.last_error = f"profiling failed: {error}"
            logger.exception("driftline traffic profiling failed; %d rows not profiled", rows)

    def _write(self) -> None:
        profile, start = self._profile, self._start
        self._profile, self._start = None, None
        self.status.window_start, self.status.rows_in_window = None, 0
        if profile is None or start is None:
            return
        path = part_path(self.store, self.model, self.version, start)
        try:
            profiles.write_profile(profile.view(), path)
            self.status.windows_written += 1
            self.status.last_written = path
        except Exception as error:  # a store outage loses this window's profile, never a request
            self.status.last_error = f"writing {path} failed: {error}"
            logger.exception("driftline could not write the traffic window profile %s", path)


@dataclass(frozen=True)
class TrafficWindow:
    """One closed window of one served version: its parts, one per service process."""

    model: str
    version: str
    start: str
    parts: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """The window's identity in the registry (where batches are keyed by content fingerprint)."""
        return f"window:{self.version}:{self.start}"

    @property
    def name(self) -> str:
        return f"{self.version}-{self.start}"

    @property
    def folder(self) -> str:
        """Where the window's parts are: the origin the registry records for it."""
        return self.parts[0].rsplit("/", 1)[0]


def closed_windows(
    store: str, model: str, now: datetime, window_seconds: float, grace_seconds: float = 60.0
) -> list[TrafficWindow]:
    """The traffic windows whose end (plus a grace period for the last writes) is past, oldest first."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(f"{store.rstrip('/')}/{model}/traffic")
    if not fs.exists(root):
        return []
    grouped: dict[tuple[str, str], list[str]] = {}
    for path in fs.glob(f"{root}/*/*/*.bin"):
        version, start = path.rsplit("/", 3)[-3:-1]
        grouped.setdefault((version, start), []).append(fs.unstrip_protocol(path))
    cutoff = now.timestamp() - window_seconds - grace_seconds
    windows = []
    for (version, start), parts in grouped.items():
        try:
            began = datetime.strptime(start, STAMP).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue  # not a window folder
        if began <= cutoff:
            windows.append(TrafficWindow(model, version, start, tuple(sorted(parts))))
    return sorted(windows, key=lambda w: (w.start, w.version))


def merge_window(window: TrafficWindow, store: str) -> profiles.ProfileRecord:
    """Merge a window's parts into one profile in the store (kind ``window``); return where it is."""
    merged = None
    for part in window.parts:
        view = profiles.read_profile(part)
        merged = view if merged is None else merged.merge(view)
    if merged is None:
        raise ValueError(f"{window.key}: no profile parts")
    path = profiles.profile_path(store, window.model, "window", window.name)
    profiles.write_profile(merged, path)
    columns = tuple(str(c) for c in merged.get_columns())
    return profiles.ProfileRecord(path=path, rows=profiles.view_rows(merged), columns=columns)


def unclaimed_windows(
    registry: Registry, model: str, store: str, now: datetime, window_minutes: float
) -> list[TrafficWindow]:
    """The closed windows in the profile store that no monitor run has claimed, oldest first."""
    length = window_minutes * 60
    # Every process writes its part within a second of the window's end; the grace period covers slow stores.
    windows = closed_windows(store, model, now, length, grace_seconds=min(60.0, length))
    seen = {b.fingerprint for b in registry.batches(model, status=BatchStatus.WINDOW)}
    return [w for w in windows if w.key not in seen]
