"""Single-row serving throughput and latency: driftline's service versus a bare BentoML service, in one run.

    uv run python bench/serve.py [--seconds 10] [--clients 1 8 32] [--rounds 2]

Trains the fraud example's pipeline once into a temporary BentoML store, then serves the same saved model two
ways, one at a time, each with ``bentoml serve`` on a free loopback port:

- driftline: ``driftline.serving.service:ModelService`` as ``driftline serve`` runs it (schema checks on every row,
  live-traffic profiling on, adaptive batching), and once more with profiling off, to show what profiling costs;
- bare: ``bench/bare_service.py``, the same model behind a plain ``@bentoml.api`` (no checks, no profiling).

This process is the load: for each client count, that many keep-alive HTTP clients send single-row requests back
to back for ``--seconds``; every reply must be a 200. The services alternate within each round, so drift of the
machine's speed hits both alike. Prints requests/s and p50/p99 latency per service and the ratio to the bare service.
Everything it starts, it stops. Record the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def train(window_minutes: float) -> tuple[str, dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """Fit the fraud spec's pipeline on generated rows and save it; return its tag, service env and sample rows."""
    from driftline.examples.fraud import generate
    from driftline.loop import modeling, store
    from driftline.serving.config import config_for
    from driftline.spec import load_spec

    spec = load_spec("fraud", {"serving.window_minutes": window_minutes})
    frame = generate(6000, 1)
    model = modeling.fit(frame, spec)
    schema = modeling.training_schema(frame, spec).as_dict()
    tag = store.save("fraud", model, classifier=True, labels={}, lineage={}, schema=schema)
    rows = generate(500, 2)[spec.features.columns].to_dict(orient="records")
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]
    files = store.digests(tag)  # the service refuses a model whose digests it is not given
    profiled, plain = config_for(spec, tag, files=files), config_for(spec, tag, profile=False, files=files)
    return tag, profiled.to_env(), plain.to_env(), records


@contextmanager
def served(name: str, target: str, env: dict[str, str], cwd: Path, log_dir: Path) -> Iterator[str]:
    from driftline.runtime.processes import bentoml_command, launched
    from driftline.runtime.server import free_port

    port = free_port()
    log_path = log_dir / f"{name}.log"
    command = [bentoml_command(), "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with launched(command, log_path, env=env, cwd=cwd) as process:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name}: bentoml serve exited; see {log_path}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: not ready in 120 s; see {log_path}")
            time.sleep(0.3)
        yield url


async def load(url: str, rows: list[dict[str, Any]], clients: int, seconds: float, headers: dict[str, str]) -> Result:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=headers) as client:

        async def one_client(offset: int, until: float, record: bool) -> None:
            index = offset
            while time.perf_counter() < until:
                start = time.perf_counter()
                response = await client.post("/predict_one", json={"row": rows[index % len(rows)]})
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
                if record:
                    latencies.append((time.perf_counter() - start) * 1000)
                index += clients

        warm_until = time.perf_counter() + 1.0
        await asyncio.gather(*(one_client(i, warm_until, False) for i in range(clients)))
        start = time.perf_counter()
        await asyncio.gather(*(one_client(i, start + seconds, True) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return Result(len(latencies), elapsed, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured load per service and client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two services")
    parser.add_argument(
        "--window-minutes", type=float, default=0.25, help="traffic profile window (short: many writes)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="driftline-bench-serve-"))
    os.environ.update(
        BENTOML_HOME=str(work / "bentoml"),
        DRIFTLINE_PROJECT_DIR=str(REPO),
        DRIFTLINE_HOME=str(work / "state"),
        BENTOML_DO_NOT_TRACK="true",
        WHYLOGS_NO_ANALYTICS="1",
    )
    try:
        tag, driftline_env, unprofiled_env, rows = train(args.window_minutes)
        profile_store = work / "state" / "profiles"
        services = {
            "driftline": ("driftline.serving.service:ModelService", driftline_env, REPO),
            "driftline, profiling off": ("driftline.serving.service:ModelService", unprofiled_env, REPO),
            "bare": ("bare_service:BareService", {"BENCH_MODEL_TAG": tag}, REPO / "bench"),
        }
        results: dict[tuple[str, int], list[Result]] = {}
        for round_index in range(args.rounds):
            order = list(services) if round_index % 2 == 0 else list(reversed(services))
            for name in order:
                target, extra, cwd = services[name]
                with served(name, target, {**os.environ, **extra}, cwd, work) as url:
                    for clients in args.clients:
                        result = asyncio.run(load(url, rows, clients, args.seconds, {}))
                        results.setdefault((name, clients), []).append(result)
                        print(
                            f"round {round_index + 1} {name:24} {clients:3} clients: {result.rate:7.1f} req/s",
                            flush=True,
                        )

        print(f"\nsingle-row /predict_one, {args.seconds:g} s x {args.rounds} rounds per cell, model {tag}\n")
        print("| clients | service | req/s | p50 ms | p99 ms | vs bare |")
        print("|---|---|---|---|---|---|")
        for clients in args.clients:
            merged = {}
            for name in services:
                runs = results[(name, clients)]
                merged[name] = Result(
                    sum(r.requests for r in runs),
                    sum(r.seconds for r in runs),
                    [x for r in runs for x in r.latencies_ms],
                )
            for name, result in merged.items():
                cell = "" if name == "bare" else f"{result.rate / merged['bare'].rate:.2f}x"
                print(
                    f"| {clients} | {name} | {result.rate:.0f} | {result.percentile(0.5):.1f} | "
                    f"{result.percentile(0.99):.1f} | {cell} |"
                )
        windows = sorted(profile_store.rglob("*.bin")) if profile_store.exists() else []
        print(f"\ntraffic window profiles the driftline service wrote ({args.window_minutes:g} min): {len(windows)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
