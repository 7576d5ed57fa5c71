"""Drift to retrain latency, and the monitor flow's cost versus batch size, on a real local Prefect server.

    uv run python bench/drift_retrain.py [--runs 10] [--poll 1] [--sizes 10000 100000 1000000]

Starts its own Prefect server (temp home, free port) and a ``driftline serve-flows`` process, trains the fraud
example once, then:

1. ``--runs`` times: a drifted batch lands and the monitor flow runs; measured is the time from the batch landing
   to the retrain run triggered by the drift event being Running (and to it finishing). The bench's gate rejects
   every retrain so the champion's reference stays fixed and every drifted batch drifts. The runner polls every
   ``--poll`` seconds (Prefect's default is 10 s; it bounds the pick-up delay).
2. For each size in ``--sizes``: one batch of that many rows lands and the monitor flow processes it (read,
   validate, profile, score drift against the fixed reference, decide), timed end to end.

Everything it starts, it stops. Prints a table; record the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from driftline.runtime.prefect_api import TERMINAL, deployment_id, flow_runs
from driftline.runtime.processes import spawn, stop

REPO = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--poll", type=float, default=1.0, help="runner poll frequency, seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    project = work / "project"
    shutil.copytree(REPO / "deployments", project / "deployments", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(REPO / "expectations", project / "expectations")
    spec = project / "deployments" / "fraud.toml"
    # Every drifted batch must trigger: no cooldown, and a gate that keeps the champion, so the reference profile
    # stays the clean one (a promoted retrain would learn the drift, and the next batch would not drift).
    text = spec.read_text().replace("[drift]\n", "[drift]\ncooldown_minutes = 0\n")
    spec.write_text(text.replace("min_improvement = 0.002", "min_improvement = 1.0"))
    os.environ.update(
        DRIFTLINE_PROJECT_DIR=str(project),
        DRIFTLINE_HOME=str(work / "state"),
        BENTOML_HOME=str(work / "bentoml"),
        PREFECT_HOME=str(work / "prefect-client"),
    )

    from driftline.runtime import server

    info = server.start(work / "prefect", server.free_port())
    os.environ["PREFECT_API_URL"] = info.api_url
    serving = None
    try:
        from driftline.examples.fraud import generate
        from flows.monitor import monitor
        from flows.train import train

        data = project / "data" / "fraud"
        landing = data / "landing"
        landing.mkdir(parents=True)
        for seed in (1, 2, 3):
            generate(4000, seed).to_parquet(data / f"batch-{seed}.parquet")
        assert train(model="fraud").promoted

        serving = spawn(["fraud"], project, work / "serve.log", poll_seconds=args.poll, limit=1)
        deployment = deployment_id(info.api_url, "retrain", "fraud")

        to_running, to_done = [], []
        for run in range(args.runs):
            seen = {r["id"] for r in flow_runs(info.api_url, deployment)}
            generate(8000, 100 + run, drift=True).to_parquet(landing / f"drifted-{run}.parquet")
            landed = time.time()
            monitor(model="fraud")
            started, finished = _wait_new_run(info.api_url, deployment, seen)
            to_running.append(started - landed)
            to_done.append(finished - landed)
            print(f"run {run + 1}: running after {started - landed:.2f} s, finished after {finished - landed:.2f} s")

        sizes = []
        for rows in args.sizes:
            generate(rows, 900 + rows % 97).to_parquet(landing / f"size-{rows}.parquet")
            start = time.perf_counter()
            monitor(model="fraud")
            sizes.append((rows, time.perf_counter() - start))
            # A clean batch still enters the N-of-M history; that is what the monitor does for real.

        print(f"\ndrifted batch landing → retrain run (runner poll {args.poll:g} s, {args.runs} runs)")
        for name, values in (("Running", to_running), ("finished", to_done)):
            print(
                f"  to {name:<9} median {statistics.median(values):6.2f} s   p95 {_percentile(values, 0.95):6.2f} s"
                f"   min {min(values):6.2f} s   max {max(values):6.2f} s"
            )
        print("\nmonitor flow, one batch, reference fixed (fraud champion, 12,000 training rows)")
        base = sizes[0][1]
        for rows, seconds in sizes:
            per_million = seconds / rows * 1_000_000
            print(f"  {rows:>9,} rows  {seconds:7.2f} s   {per_million:6.2f} s per 1M rows   {seconds / base:5.1f}x")
    finally:
        if serving is not None:
            stop(serving)
        # Deliver this process's queued logs and events while the server still answers.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
        server.stop(work / "prefect")
        shutil.rmtree(work, ignore_errors=True)


def _wait_new_run(api: str, deployment: str, seen: set[str], timeout: float = 300) -> tuple[float, float]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        fresh = [r for r in flow_runs(api, deployment) if r["id"] not in seen]
        if fresh and fresh[0]["state_type"] in TERMINAL:
            run = fresh[0]
            return _ts(run["start_time"]), _ts(run["end_time"])
        time.sleep(0.5)
    raise SystemExit("no retrain run finished in time; see serve.log")


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
