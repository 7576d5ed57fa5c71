"""A bounded loopback load on the real service: 32 clients for 75 s, no errors, memory that settles and stays flat.

Under load the worker's memory rises for its first half minute (allocator arenas, the window's sketches, the
profiling queue: 336 -> 436 MB measured, then flat to the MB for a minute), so the test bounds that rise and
then asks the second half of the run to be flat: a leak of 0.5 MB/s fails it.

Runs under the ``load`` marker (``make test`` runs it; ``-m "not load"`` leaves it out).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter

import httpx
import psutil
import pytest

from tests.conftest import Service

pytestmark = [pytest.mark.integration, pytest.mark.load]

CLIENTS = 32
SECONDS = 75.0
WARM_UP_S = 15.0
MAX_GROWTH = 0.25  # from the end of warm-up to the largest sample
MAX_LATE_GROWTH = 0.03  # over the second half of the samples


def rss_mb(pid: int) -> float:
    """Resident memory of the service: `driftline serve`, bentoml serve and its workers."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total / 2**20


def test_32_clients_for_75_seconds_get_answers_and_memory_settles(fraud_service: Service) -> None:
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    rows = fraud_service.rows

    def client(index: int) -> None:
        seen: Counter[str] = Counter()
        with httpx.Client(base_url=fraud_service.url, timeout=30) as http:
            i = index
            while not stop.is_set():
                i += CLIENTS
                try:
                    if i % 4:  # three in four: one row (batched together); else ten rows
                        response = http.post("/predict_one", json={"row": rows[i % len(rows)]})
                    else:
                        response = http.post("/predict", json={"rows": rows[i % 190 : i % 190 + 10]})
                    ok = response.status_code == 200 and response.json()["model"] == fraud_service.tag
                    seen["ok" if ok else f"status {response.status_code}: {response.text[:200]}"] += 1
                except httpx.HTTPError as error:
                    seen[f"{type(error).__name__}: {error}"] += 1
        with lock:
            outcomes.update(seen)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(WARM_UP_S)
    warm = rss_mb(fraud_service.pid)
    samples = [warm]
    while time.monotonic() - start < SECONDS:
        time.sleep(5)
        samples.append(rss_mb(fraud_service.pid))
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    took = time.monotonic() - start
    total = sum(outcomes.values())
    errors = {what: n for what, n in outcomes.items() if what != "ok"}
    print(
        f"\nload: {CLIENTS} clients, {took:.0f} s, {total} requests ({total / took:.0f}/s), errors {errors}; "
        f"RSS after {WARM_UP_S:g} s warm-up {warm:.0f} MB, samples {[round(s) for s in samples]}, "
        f"growth {(max(samples) - warm) / warm:+.1%}"
    )
    assert not errors
    assert total > CLIENTS * 10  # the service did answer under load
    assert max(samples) < warm * (1 + MAX_GROWTH), samples
    middle = samples[len(samples) // 2]
    assert max(samples[len(samples) // 2 :]) < middle * (1 + MAX_LATE_GROWTH), samples
