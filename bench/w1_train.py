"""W1: the train flow against the plain script that makes the same library calls (bench/plain_train.py).

    uv run python bench/w1_train.py [--runs 5] [--sizes 10000 1000000 10000000] [--quick] [--out w1.json]

Starts its own Prefect server (temp home, free loopback port) for the run and stops it at the end. For each size,
one seeded fraud batch (Parquet) is generated once; then ``--runs`` pairs alternate (which side goes first alternates
too): ``driftline train fraud --data <batch> --set serving.check=false`` in a fresh process with fresh state (no
champion, cold caches, an empty model store), and ``python bench/plain_train.py`` on the same file. The servability
check is left out of the ratio (the plain script has none) and timed apart at the smallest size: the same train with
the check on (not with ``--quick``). A rerun on unchanged input (the same state again) is timed at the smallest size
too.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import (
    BIN,
    ROOT,
    Result,
    Sample,
    Summary,
    Table,
    Target,
    arguments,
    emit,
    measure,
    ratio,
    write_fraud_parquet,
)

SIZES = (10_000, 1_000_000, 10_000_000)


def project(work: Path) -> Path:
    """A project folder with the fraud spec and suite (the spec's own source is replaced by ``--data``)."""
    folder = work / "project"
    shutil.copytree(ROOT / "deployments", folder / "deployments", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(ROOT / "expectations", folder / "expectations")
    return folder


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k rows, 1 run (under 2 minutes)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    sizes, runs = ([10_000], 1) if args.quick else (args.sizes, args.runs)

    work = Path(tempfile.mkdtemp(prefix="driftline-w1-"))
    folder = project(work)
    base_env = {
        "DRIFTLINE_PROJECT_DIR": str(folder),
        "PREFECT_HOME": str(work / "prefect-client"),
        "WHYLOGS_NO_ANALYTICS": "True",
        "BENTOML_DO_NOT_TRACK": "True",
        "GX_ANALYTICS_ENABLED": "False",
    }
    os.environ.update(base_env)
    from driftline.runtime import server

    info = server.start(work / "prefect", server.free_port())
    base_env["PREFECT_API_URL"] = info.api_url
    counter = iter(range(10**6))

    def driftline(data: Path, *, check: bool = False, state: Path | None = None) -> Sample:
        state = state or work / f"state-{next(counter)}"
        env = {**base_env, "DRIFTLINE_HOME": str(state), "BENTOML_HOME": str(state / "bentoml")}
        command = [str(BIN / "driftline"), "train", "fraud", "--data", str(data)]
        command += [] if check else ["--set", "serving.check=false"]
        return measure(command, env=env, cwd=folder)

    def plain(data: Path) -> Sample:
        home = work / f"plain-{next(counter)}"
        env = {**base_env, "BENTOML_HOME": str(home / "bentoml")}
        command = [sys.executable, str(ROOT / "bench" / "plain_train.py"), "--data", str(data)]
        command += ["--suite", str(folder / "expectations" / "fraud.json")]
        command += ["--spec", str(folder / "deployments" / "fraud.toml")]
        return measure(command, env=env, cwd=folder)

    rows: list[list[object]] = []
    targets: list[Target] = []
    notes: list[str] = []
    try:
        for size in sizes:
            data = work / f"fraud-{size}.parquet"
            write_fraud_parquet(size, data)
            ours: list[Sample] = []
            theirs: list[Sample] = []
            for run in range(runs):
                if run % 2 == 0:
                    ours.append(driftline(data))
                    theirs.append(plain(data))
                else:
                    theirs.append(plain(data))
                    ours.append(driftline(data))
            wall = ratio([s.seconds for s in ours], [s.seconds for s in theirs])
            rss = ratio([s.peak_rss_mb for s in ours], [s.peak_rss_mb for s in theirs])
            for name, samples, against in (("driftline train", ours, wall), ("plain script", theirs, None)):
                rows.append(
                    [
                        f"{size:,}",
                        name,
                        Summary.of([s.seconds for s in samples]).cell(),
                        Summary.of([s.cpu_seconds for s in samples]).cell(),
                        Summary.of([s.peak_rss_mb for s in samples]).cell(0),
                        against.cell() if against else "",
                    ]
                )
            limit = 0.8 if size >= 1_000_000 else 1.05
            if size in (10_000, 1_000_000):
                targets.append(
                    Target(
                        f"W1 wall at {size:,} rows", f"<= {limit} of plain", f"{wall.median:.2f}", wall.median <= limit
                    )
                )
            targets.append(
                Target(
                    f"W1 peak RSS at {size:,} rows",
                    "<= plain script's",
                    f"{rss.median:.2f} of plain",
                    rss.median <= 1.0,
                )
            )
            if size == min(sizes):
                state = work / "state-rerun"
                first = driftline(data, state=state)
                again = [driftline(data, state=state) for _ in range(runs)]
                rows.append(
                    [
                        f"{size:,}",
                        "driftline train, rerun on unchanged input",
                        Summary.of([s.seconds for s in again]).cell(),
                        Summary.of([s.cpu_seconds for s in again]).cell(),
                        Summary.of([s.peak_rss_mb for s in again]).cell(0),
                        f"first run {first.seconds:.2f} s",
                    ]
                )
                if args.quick:
                    continue
                checked = [driftline(data, check=True) for _ in range(runs)]
                rows.append(
                    [
                        f"{size:,}",
                        "driftline train, servability check on",
                        Summary.of([s.seconds for s in checked]).cell(),
                        Summary.of([s.cpu_seconds for s in checked]).cell(),
                        Summary.of([s.peak_rss_mb for s in checked]).cell(0),
                        "not in the ratio",
                    ]
                )
    finally:
        server.stop(work / "prefect")
        shutil.rmtree(work, ignore_errors=True)

    notes += [
        "Each run is a fresh process with fresh state (no champion, empty model store, cold caches); the Prefect "
        "server is shared and not in the measured process tree.",
        "The ratio leaves the servability check out (`--set serving.check=false`): the plain script has none. "
        "Its cost is the row 'servability check on'.",
        "The plain script profiles the same columns as the flow with whylogs' default resolver, splits with "
        "`train_test_split` and lets XGBoost use its default thread count.",
    ]
    command = "uv run python bench/w1_train.py" + (" --quick" if args.quick else f" --runs {runs}")
    result = Result(
        workload="W1",
        title="the train flow against a plain script with the same library calls",
        command=command,
        tables=[
            Table(
                "Wall s, CPU s, peak RSS MB: median (min–max)",
                ["rows", "side", "wall s", "CPU s", "peak RSS MB", "wall vs plain"],
                rows,
            )
        ],
        targets=targets,
        notes=notes,
    )
    emit(result, args.out)


if __name__ == "__main__":
    main()
