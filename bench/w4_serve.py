"""W4: single-row serving, driftline's service against BentoML's own adaptive batching and a no-op ceiling.

    uv run python bench/w4_serve.py [--runs 5] [--seconds 5] [--clients 1 8 32] [--quick] [--out w4.json]

Fits the fraud example's pipeline once into a temporary BentoML store, then serves it three ways, each with
``bentoml serve`` on a free loopback port, one at a time, the order alternating from run to run:

- driftline: ``driftline.serving.service:ModelService`` as ``driftline serve`` runs it (the spec's settings: schema
  checks on every row, live-traffic profiling on, the fast path, single-row batching);
- batching: ``bench/serve_anchors.py:BatchingService``, the same model behind ``@bentoml.api(batchable=True)``;
- ceiling: ``bench/serve_anchors.py:CeilingService``, a no-op endpoint: BentoML's HTTP machinery alone.

The load is this process: for each client count, that many HTTP/1.1 keep-alive connections (raw asyncio streams,
the cheapest client there is, the same for every service) send single-row requests back to back for ``--seconds``
after a one-second warm-up; every answer must be a 200. Reports requests/s, p50 and p99 per service and client
count (medians over runs, min and max), driftline's share of the ceiling and its ratio to the batching service
(paired within a run), and how long each service took to become ready. Everything it starts, it stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT, Result, Summary, Table, Target, arguments, emit, machine, ratio

BENCH = Path(__file__).resolve().parent
SERVICES = ("driftline", "batching", "ceiling")


@dataclass(frozen=True)
class Load:
    """One service under one client count for one run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def train(work: Path) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """Fit the fraud spec's pipeline on generated rows and save it; return its tag, the service's env, request rows."""
    from driftline.examples.fraud import generate
    from driftline.loop import modeling, store
    from driftline.serving.config import config_for
    from driftline.spec import load_spec

    spec = load_spec("fraud")
    frame = generate(6000, 1)
    model = modeling.fit(frame, spec)
    schema = modeling.training_schema(frame, spec).as_dict()
    tag = store.save("fraud", model, classifier=True, labels={}, lineage={}, schema=schema)
    rows = generate(500, 2)[spec.features.columns].to_dict(orient="records")
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]
    config = config_for(spec, tag, files=store.digests(tag))  # as `driftline serve` starts it: profiling on
    return tag, config.to_env(), records


def request(path: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


async def load(port: int, requests: list[bytes], clients: int, seconds: float) -> Load:
    latencies: list[float] = []
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]

    async def one(index: int, until: float, record: bool) -> None:
        reader, writer = connections[index]
        position = index
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(requests[position % len(requests)])
            status, body = await read_response(reader)
            if status != 200:
                raise SystemExit(f"port {port}: HTTP {status}: {body[:300]!r}")
            if record:
                latencies.append((time.perf_counter() - start) * 1000)
            position += clients

    try:
        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(one(i, warm, False) for i in range(clients)))
        start = time.perf_counter()
        await asyncio.gather(*(one(i, start + seconds, True) for i in range(clients)))
        elapsed = time.perf_counter() - start
    finally:
        for _, writer in connections:
            writer.close()
    return Load(len(latencies), elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99))


@contextmanager
def served(name: str, target: str, env: dict[str, str], cwd: Path, log_dir: Path) -> Iterator[tuple[int, float]]:
    """Start ``bentoml serve target``; yield its port and the seconds it took to answer /readyz."""
    import httpx

    from driftline.runtime.processes import bentoml_command, launched
    from driftline.runtime.server import free_port

    port = free_port()
    log_path = log_dir / f"{name}.log"
    command = [bentoml_command(), "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    with launched(command, log_path, env=env, cwd=cwd) as process:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name}: bentoml serve exited; see {log_path}:\n{log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: not ready in 180 s; see {log_path}")
            time.sleep(0.05)
        yield port, time.perf_counter() - start


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], runs=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured load per service and client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--quick", action="store_true", help="one run of 2 s per cell (the smoke test's size)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 2.0

    work = Path(tempfile.mkdtemp(prefix="driftline-bench-w4-"))
    os.environ.update(
        BENTOML_HOME=str(work / "bentoml"),
        DRIFTLINE_PROJECT_DIR=str(ROOT),
        DRIFTLINE_HOME=str(work / "state"),
        BENTOML_DO_NOT_TRACK="true",
        WHYLOGS_NO_ANALYTICS="1",
    )
    try:
        tag, driftline_env, rows = train(work)
        targets = {
            "driftline": ("driftline.serving.service:ModelService", driftline_env, ROOT, "/predict_one", "row"),
            "batching": ("serve_anchors:BatchingService", {"BENCH_MODEL_TAG": tag}, BENCH, "/predict_rows", "rows"),
            "ceiling": ("serve_anchors:CeilingService", {}, BENCH, "/predict_one", "row"),
        }
        loads: dict[tuple[str, int], list[Load]] = {}
        ready: dict[str, list[float]] = {name: [] for name in SERVICES}
        for run in range(args.runs):
            order = SERVICES if run % 2 == 0 else tuple(reversed(SERVICES))
            for name in order:
                target, extra, cwd, path, key = targets[name]
                bodies = [request(path, {key: [row] if key == "rows" else row}) for row in rows]
                with served(name, target, {**os.environ, **extra}, cwd, work) as (port, seconds):
                    ready[name].append(seconds)
                    for clients in args.clients:
                        result = asyncio.run(load(port, bodies, clients, args.seconds))
                        loads.setdefault((name, clients), []).append(result)
                        print(
                            f"run {run + 1} {name:9} {clients:3} clients: {result.rate:7.1f} req/s "
                            f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:7.2f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
        emit(summarise(args, tag, loads, ready), args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarise(args: Any, tag: str, loads: dict[tuple[str, int], list[Load]], ready: dict[str, list[float]]) -> Result:
    rows = []
    for clients in args.clients:
        ceiling = loads[("ceiling", clients)]
        batching = loads[("batching", clients)]
        for name in SERVICES:
            runs = loads[(name, clients)]
            rates = [each.rate for each in runs]
            share = ratio(rates, [each.rate for each in ceiling]).cell() if name != "ceiling" else ""
            vs_batching = ratio(rates, [each.rate for each in batching]).cell() if name == "driftline" else ""
            rows.append(
                [
                    clients,
                    name,
                    Summary.of(rates).cell(0),
                    Summary.of([each.p50_ms for each in runs]).cell(2),
                    Summary.of([each.p99_ms for each in runs]).cell(1),
                    share,
                    vs_batching,
                ]
            )
    table = Table(
        f"Single-row requests, {args.seconds:g} s per cell, {args.runs} runs (median (min–max)), model {tag}",
        ["clients", "service", "req/s", "p50 ms", "p99 ms", "of ceiling req/s", "vs batching req/s"],
        rows,
    )
    ready_table = Table(
        "`bentoml serve` until /readyz answers (s)",
        ["service", "seconds"],
        [[name, Summary.of(ready[name]).cell(1)] for name in SERVICES],
    )
    result_targets = []
    if 1 in args.clients:
        p50 = statistics.median(each.p50_ms for each in loads[("driftline", 1)])
        ceiling_p50 = statistics.median(each.p50_ms for each in loads[("ceiling", 1)])
        result_targets.append(
            Target(
                "one client p50",
                "<= 3 ms, or <= the ceiling's p50 + 1 ms",
                f"{p50:.2f} ms (ceiling {ceiling_p50:.2f} ms)",
                p50 <= 3.0 or p50 <= ceiling_p50 + 1.0,
            )
        )
    if 32 in args.clients:
        runs, batching, ceiling = (loads[(name, 32)] for name in SERVICES)
        share = ratio([each.rate for each in runs], [each.rate for each in ceiling]).median
        over = ratio([each.rate for each in runs], [each.rate for each in batching]).median
        p99 = statistics.median(each.p99_ms for each in runs)
        result_targets += [
            Target("32 clients, share of the ceiling's req/s", ">= 0.70", f"{share:.2f}", share >= 0.70),
            Target("32 clients, p99", "<= 60 ms", f"{p99:.1f} ms", p99 <= 60.0),
            Target("32 clients, vs the batching service's req/s", ">= 1.5x", f"{over:.2f}x", over >= 1.5),
        ]
    info = machine()
    return Result(
        workload="W4",
        title="serving, against BentoML's adaptive batching and a no-op ceiling",
        command="uv run python bench/w4_serve.py " + " ".join(sys.argv[1:]),
        tables=[table, ready_table],
        targets=result_targets,
        notes=[
            f"{info['cpu']}, {info['memory']}, Python {info['python']}, bentoml {info['bentoml']}, "
            f"scikit-learn {info['scikit-learn']}, xgboost {info['xgboost']}",
            "Load: raw asyncio HTTP/1.1 keep-alive connections in the bench's own process, on the same 2 cores as "
            "the service; each service runs alone, one worker (BentoML's default), started fresh each run.",
            "driftline validates every row against the training schema and profiles served traffic (spec defaults).",
        ],
    )


if __name__ == "__main__":
    main()
