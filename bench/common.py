"""What every workload in ``bench/`` shares: measuring a command, summarising runs, and the result it writes.

A workload is a script ``bench/wN_<name>.py`` that a person can run alone. It measures driftline and its anchor
side by side in one run (alternating, so a noisy machine slows both), each run in its own process so wall time,
CPU time and peak RSS belong to that run alone, and ends with ``emit(result, args.out)``: a table on stdout and,
with ``--out``, the JSON that ``bench/run.py`` (``make bench``) gathers into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Sample:
    """One run of a command: wall seconds, CPU seconds (user + system, the whole process tree) and peak RSS."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stdout: str = field(default="", repr=False)


def measure(command: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run ``command`` to completion; peak RSS is the largest sum over its process tree, sampled every 20 ms.

    Fails (CalledProcessError, with the command's stderr) if the command does: a bench never reports a broken run.
    """
    import psutil

    peak = 0
    cpu: dict[int, float] = {}
    done = threading.Event()
    start = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def watch() -> None:
        nonlocal peak
        try:
            root = psutil.Process(process.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for each in tree:
                try:
                    total += each.memory_info().rss
                    times = each.cpu_times()
                    cpu[each.pid] = times.user + times.system + times.children_user + times.children_system
                except psutil.NoSuchProcess:
                    continue
            peak = max(peak, total)
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    before = os.times()
    watcher.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    after = os.times()
    if process.returncode != 0:
        sys.stderr.write(f"{' '.join(command)} exited with code {process.returncode}; its stderr ends:\n")
        sys.stderr.write(stderr[-4000:] + "\n")
        raise subprocess.CalledProcessError(process.returncode, list(command), stdout, stderr)
    # Reaped children's CPU (exact) where the platform gives it; the sampled tree's otherwise.
    reaped = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Sample(seconds, max(reaped, sum(cpu.values())), peak / 2**20, stdout)


def measure_until_ready(
    command: Sequence[str],
    ready: Callable[[], bool],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300.0,
) -> Sample:
    """Start ``command`` (a server), time it until ``ready()`` is true, then stop it and everything it started.

    ``seconds`` is the time to ready; CPU and peak RSS are its process tree's up to then. Fails (RuntimeError, with
    the output's tail) if the command exits or is not ready within ``timeout``.
    """
    import tempfile

    import psutil

    with tempfile.TemporaryFile(mode="w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **(env or {})},
            cwd=cwd or ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        seen = {psutil.Process(process.pid)}
        try:
            peak, cpu = 0.0, 0.0
            while not ready():
                if process.poll() is not None or time.perf_counter() - start > timeout:
                    log.seek(0)
                    what = f"exited with code {process.returncode}" if process.poll() is not None else "timed out"
                    raise RuntimeError(f"{' '.join(command)} {what} before it was ready:\n{log.read()[-2000:]}")
                rss, cpu_now = _tree_usage(seen)
                peak, cpu = max(peak, rss), max(cpu, cpu_now)
                time.sleep(0.05)
            seconds = time.perf_counter() - start
            rss, cpu_now = _tree_usage(seen)
            return Sample(seconds, max(cpu, cpu_now), max(peak, rss) / 2**20)
        finally:
            _stop_tree(process, seen)


def _tree_usage(seen: set[Any]) -> tuple[float, float]:
    """Add the live descendants of ``seen``'s processes to it; return their summed RSS (bytes) and CPU seconds."""
    import psutil

    for each in list(seen):
        with contextlib.suppress(psutil.NoSuchProcess):
            seen.update(each.children(recursive=True))
    rss, cpu = 0.0, 0.0
    for each in seen:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss += each.memory_info().rss
            times = each.cpu_times()
            cpu += times.user + times.system
    return rss, cpu


def _stop_tree(process: subprocess.Popen[str], seen: set[Any]) -> None:
    """SIGTERM the command (a supervisor stops what it started), then kill whatever of its tree is left."""
    import signal

    import psutil

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for each in seen:
        with contextlib.suppress(psutil.NoSuchProcess):
            each.kill()


@dataclass(frozen=True)
class Summary:
    """Median, min and max of a measure over runs."""

    median: float
    min: float
    max: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def cell(self, digits: int = 2) -> str:
        """``1.23 (1.10-1.40)``: the median, then min and max."""
        return f"{self.median:.{digits}f} ({self.min:.{digits}f}–{self.max:.{digits}f})"


def ratio(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """The ratio of paired runs (run i of one against run i of the other), summarised."""
    return Summary.of([a / b for a, b in zip(numerators, denominators, strict=True)])


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """A target from the performance issue, what was measured against it, and whether it holds."""

    name: str
    goal: str
    measured: str
    met: bool


@dataclass(frozen=True)
class Result:
    """What a workload reports: ``workload`` is its id ("W1"), ``command`` the line that reproduces it."""

    workload: str
    title: str
    command: str
    tables: list[Table]
    targets: list[Target]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        parts = [f"## {self.workload}: {self.title}", "", f"`{self.command}`", ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        if self.targets:
            rows = [[t.name, t.goal, t.measured, "met" if t.met else "**not met**"] for t in self.targets]
            parts += [Table("Targets", ["target", "goal", "measured", ""], rows).markdown(), ""]
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"


def emit(result: Result, out: Path | None) -> None:
    """Print the result as Markdown; with ``out``, also write it as JSON for ``bench/run.py``."""
    print(result.markdown())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(result), indent=2, default=str))


def load(path: Path) -> Result:
    raw = json.loads(path.read_text())
    return Result(
        workload=raw["workload"],
        title=raw["title"],
        command=raw["command"],
        tables=[Table(**t) for t in raw["tables"]],
        targets=[Target(**t) for t in raw["targets"]],
        notes=raw.get("notes", []),
    )


def arguments(description: str, runs: int = 5) -> argparse.ArgumentParser:
    """The options every workload takes: ``--runs`` (pairs; the issue asks for at least 5), ``--out`` (JSON)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=runs, help=f"runs of each side (default {runs})")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    return parser


def write_fraud_parquet(rows: int, path: Path, chunk: int = 1_000_000) -> None:
    """A seeded fraud batch of ``rows`` rows, written ``chunk`` rows (one row group) at a time: flat memory at 10M."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.examples.fraud import generate as fraud

    writer = None
    try:
        for index, start in enumerate(range(0, rows, chunk)):
            table = pa.Table.from_pandas(fraud(min(chunk, rows - start), seed=index), preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def machine() -> dict[str, str]:
    """The machine and the versions a figure depends on."""
    import psutil

    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    versions = {}
    for name in ("prefect", "great_expectations", "whylogs", "bentoml", "scikit-learn", "xgboost", "pandas", "pyarrow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "os": platform.platform(),
        **versions,
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []
