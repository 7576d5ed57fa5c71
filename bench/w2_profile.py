"""W2: profile + validate a big Parquet batch, driftline's path against whylogs' default and GX called directly.

    uv run python bench/w2_profile.py [--runs 5] [--sizes 1000000 10000000] [--quick] [--out w2.json]

For each size, one seeded fraud batch (Parquet, row groups of 1M rows) is generated once under a temp dir. Then
``--runs`` pairs alternate, each side in its own process:

- driftline: what the monitor does with a landing file: ``read_batch(path, lazy=True)`` (footer and a chunked
  fingerprint), ``validate(batch, spec)`` (the fraud suite, chunk by chunk) and ``profile_batch`` (the spec's
  columns, chunk by chunk) into a profile store;
- anchor: ``pd.read_parquet`` of the same columns, ``why.log(pandas=frame)`` (whylogs' default resolver) and GX's
  ``batch.validate(suite)`` on the whole frame, as a user would write them.

Throughput is rows per wall second of the whole process (imports included); peak RSS is the process tree's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Result, Sample, Summary, Table, Target, arguments, emit, measure, ratio, write_fraud_parquet

SIZES = (1_000_000, 10_000_000)
GIB = 1024.0


def run_driftline(data: Path, home: Path) -> None:
    from driftline import libs
    from driftline.loop import data as loading
    from driftline.loop import profiles, validation
    from driftline.spec import load_spec

    spec = load_spec("fraud")
    libs.great_expectations(), profiles.whylogs()  # imports, outside the timed work (the anchor does the same)
    start = time.perf_counter()
    batch = loading.read_batch(str(data), lazy=True)
    report = validation.validate(batch, spec)
    record = profiles.profile_batch(batch, spec, str(home / "profiles"), "batch")
    print(json.dumps({"work_seconds": time.perf_counter() - start, "rows": record.rows, "valid": report.success}))


def run_anchor(data: Path, home: Path) -> None:
    import pandas as pd

    from driftline import libs
    from driftline.spec import load_spec

    spec = load_spec("fraud")
    columns = [c for c in spec.columns if c != spec.timestamp]  # driftline leaves datetimes out too
    why = libs.whylogs()  # whylogs with the numpy-2 shim, nothing else of driftline's
    gx = libs.great_expectations()
    start = time.perf_counter()
    frame = pd.read_parquet(data)
    view = why.log(pandas=frame[columns]).view()
    (home / "anchor.bin").write_bytes(view.serialize())
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("anchor")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(**_suite())
    result = batch.validate(suite)
    print(json.dumps({"work_seconds": time.perf_counter() - start, "rows": len(frame), "valid": result.success}))


def _suite() -> dict[str, object]:
    raw = json.loads((ROOT / "expectations" / "fraud.json").read_text())
    return {"name": raw["name"], "expectations": raw["expectations"]}


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, 1 run (under 2 minutes)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--side", choices=["driftline", "anchor"], help=argparse_hidden())
    parser.add_argument("--data", type=Path, help=argparse_hidden())
    parser.add_argument("--home", type=Path, help=argparse_hidden())
    args = parser.parse_args()
    if args.side is not None:
        (run_driftline if args.side == "driftline" else run_anchor)(args.data, args.home)
        return
    sizes, runs = ([100_000], 1) if args.quick else (args.sizes, args.runs)

    work = Path(tempfile.mkdtemp(prefix="driftline-w2-"))
    env = {
        "DRIFTLINE_PROJECT_DIR": str(ROOT),
        "DRIFTLINE_HOME": str(work / "state"),
        "WHYLOGS_NO_ANALYTICS": "True",
        "GX_ANALYTICS_ENABLED": "False",
    }

    def side(name: str, data: Path, run: int) -> Sample:
        home = work / f"{name}-{data.stem}-{run}"
        home.mkdir()
        command = [sys.executable, str(Path(__file__).resolve()), "--side", name, "--data", str(data)]
        return measure([*command, "--home", str(home)], env=env)

    rows: list[list[object]] = []
    targets: list[Target] = []
    peaks: dict[int, float] = {}
    try:
        for size in sizes:
            data = work / f"fraud-{size}.parquet"
            write_fraud_parquet(size, data)
            ours: list[Sample] = []
            theirs: list[Sample] = []
            for run in range(runs):
                pair = [("driftline", ours), ("anchor", theirs)]
                for name, samples in pair if run % 2 == 0 else pair[::-1]:
                    samples.append(side(name, data, run))
            speedup = ratio([work_seconds(s) for s in theirs], [work_seconds(s) for s in ours])
            for name, samples in (("driftline", ours), ("why.log + GX", theirs)):
                rows.append(
                    [
                        f"{size:,}",
                        name,
                        Summary.of([size / work_seconds(s) for s in samples]).cell(0),
                        Summary.of([work_seconds(s) for s in samples]).cell(),
                        Summary.of([s.seconds for s in samples]).cell(),
                        Summary.of([s.cpu_seconds for s in samples]).cell(),
                        Summary.of([s.peak_rss_mb for s in samples]).cell(0),
                        speedup.cell() if name == "driftline" else "",
                    ]
                )
            peaks[size] = Summary.of([s.peak_rss_mb for s in ours]).median
            if size >= 1_000_000:
                targets.append(
                    Target(
                        f"W2 throughput at {size:,} rows",
                        ">= 5x why.log + GX",
                        f"{speedup.median:.2f}x",
                        speedup.median >= 5.0,
                    )
                )
            data.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if 10_000_000 in peaks:
        peak = peaks[10_000_000]
        targets.append(Target("W2 peak RSS at 10M rows", "<= 1024 MB", f"{peak:.0f} MB", peak <= GIB))
    if 1_000_000 in peaks and 10_000_000 in peaks:
        growth = peaks[10_000_000] / peaks[1_000_000]
        targets.append(Target("W2 peak RSS 1M -> 10M", "flat (<= 1.25x)", f"{growth:.2f}x", growth <= 1.25))
    command = "uv run python bench/w2_profile.py" + (" --quick" if args.quick else f" --runs {runs}")
    result = Result(
        workload="W2",
        title="profile + validate a big Parquet batch: driftline against why.log and GX called directly",
        command=command,
        tables=[
            Table(
                "Throughput rows/s, wall s, CPU s, peak RSS MB: median (min–max)",
                ["rows", "side", "rows/s", "work s", "process wall s", "CPU s", "peak RSS MB", "speed-up"],
                rows,
            )
        ],
        targets=targets,
        notes=[
            "Each side is one fresh process. Throughput and speed-up are over the work (read, validate, profile), "
            "timed inside the process after both import whylogs and GX (GX's import alone is 5-8 s); the process's "
            "wall, CPU and peak RSS include the imports. driftline also fingerprints the batch (a chunked hash of "
            "every cell), which the anchor does not.",
            "Both profile the same columns (the spec's, its datetime left out: whylogs spends most of its time on "
            "datetimes and records only counts); the anchor reads the file whole once and uses whylogs' default "
            "resolver.",
            "Both validate with expectations/fraud.json; the anchor validates the whole frame in one GX call.",
        ],
    )
    emit(result, args.out)


def work_seconds(sample: Sample) -> float:
    """The timed work of a side's run, from the JSON line it prints last."""
    return float(json.loads(sample.stdout.strip().splitlines()[-1])["work_seconds"])


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
    main()
