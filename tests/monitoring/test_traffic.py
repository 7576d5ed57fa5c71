"""Live-traffic windows: the profiler cuts clock-aligned windows off the request path; the monitor finds closed ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from driftline.examples.fraud import generate
from driftline.loop import profiles
from driftline.monitoring import traffic
from driftline.monitoring.traffic import TrafficProfiler, closed_windows, merge_window

FEATURES = ["amount", "merchant_category", "country", "card_present", "hour", "distance_km", "tx_count_24h"]
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rows(count: int, seed: int) -> list[dict[str, object]]:
    return generate(count, seed)[FEATURES].to_dict(orient="records")  # type: ignore[return-value]


def test_windows_are_clock_aligned_and_written_when_their_time_is_up(tmp_path: Path) -> None:
    clock = Clock(T0 + 30)
    profiler = TrafficProfiler(str(tmp_path), "fraud", "v1", 60, clock=clock)
    profiler.observe(_rows(40, 1), [0] * 40)
    profiler._absorb()  # what the background thread does every second
    assert profiler.status.window_start == "20261123T100000Z" and profiler.status.rows_in_window == 40
    assert not list(tmp_path.rglob("*.bin"))  # nothing written while the window is open

    clock.now = T0 + 61
    profiler._tick()
    profiler.observe(_rows(10, 2), [1] * 10)
    profiler._absorb()
    (first,) = tmp_path.rglob("*.bin")
    assert first.parent.name == "20261123T100000Z" and first.parent.parent.name == "v1"
    view = profiles.read_profile(str(first))
    assert profiles.view_rows(view) == 40 and "prediction" in view.get_columns()
    assert profiler.status.windows_written == 1 and profiler.status.window_start == "20261123T100100Z"

    profiler.close()  # on shutdown the open window is written too
    assert sorted(p.parent.name for p in tmp_path.rglob("*.bin")) == ["20261123T100000Z", "20261123T100100Z"]


def test_rows_belong_to_the_window_they_were_served_in_not_the_one_they_were_profiled_in(tmp_path: Path) -> None:
    clock = Clock(T0 + 59.5)
    profiler = TrafficProfiler(str(tmp_path), "fraud", "v1", 60, clock=clock)
    profiler.observe(_rows(30, 1), [0] * 30)  # served in the first window...
    clock.now = T0 + 60.5
    profiler.observe(_rows(20, 2), [0] * 20)  # ... and these in the second
    profiler._absorb()  # both profiled after the boundary
    profiler.close()
    written = {p.parent.name: profiles.view_rows(profiles.read_profile(str(p))) for p in tmp_path.rglob("*.bin")}
    assert written == {"20261123T100000Z": 30, "20261123T100100Z": 20}


def test_requests_never_wait_and_overflow_is_counted_not_hidden(tmp_path: Path) -> None:
    profiler = TrafficProfiler(str(tmp_path), "fraud", "v1", 60, max_pending_rows=50, clock=Clock(T0))
    profiler.observe(_rows(40, 1), [0] * 40)
    profiler.observe(_rows(20, 2), [0] * 20)  # the queue is full: dropped, and said so
    assert profiler.status.rows_dropped == 20
    profiler.close()
    (written,) = tmp_path.rglob("*.bin")
    assert profiles.view_rows(profiles.read_profile(str(written))) == 40


def test_the_monitor_sees_closed_windows_only_and_merges_their_parts(tmp_path: Path) -> None:
    store = str(tmp_path)
    for part, seed in (("host-1", 1), ("host-2", 2)):
        view = profiles.profile_view(generate(100, seed)[FEATURES])
        profiles.write_profile(view, f"{store}/fraud/traffic/v1/20261123T100000Z/{part}.bin")
    profiles.write_profile(
        profiles.profile_view(generate(10, 3)[FEATURES]), f"{store}/fraud/traffic/v1/20261123T100100Z/host-1.bin"
    )
    now = datetime.fromtimestamp(T0 + 60 + 61, UTC)  # the first window ended 61 s ago, the second is open
    (window,) = closed_windows(store, "fraud", now, 60, grace_seconds=60)
    assert (window.version, window.start, len(window.parts)) == ("v1", "20261123T100000Z", 2)
    assert window.key == "window:v1:20261123T100000Z"
    merged = merge_window(window, store)
    assert merged.rows == 200 and merged.path.endswith("fraud/window/v1-20261123T100000Z.bin")
    assert closed_windows(store, "elsewhere", now, 60) == []


def test_window_start_is_aligned_to_the_window_length() -> None:
    assert traffic.window_start(T0 + 3599, 3600) == T0
    assert traffic.stamp(traffic.window_start(T0 + 125, 60)) == "20261123T100200Z"
