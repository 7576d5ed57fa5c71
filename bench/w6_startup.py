"""W6: how fast driftline's entry points start, side by side with Python's and Prefect's own.

    uv run python bench/w6_startup.py [--runs 5] [--out w6.json] [--quick]

Each run starts every command once, in turn (so a noisy moment slows them all), each in a fresh process:
``driftline --help``, ``driftline models``, ``import flows.train``, and the anchors ``python -c pass`` (the
interpreter), ``python -c "import prefect"`` and ``prefect --help``. Reported: median, min and max wall time, CPU
time and peak RSS, and the paired ratio to ``prefect --help``. Targets (issue 14): ``driftline --help`` at most
0.3 s, ``import flows.train`` at most 1.5 s.
"""

from __future__ import annotations

import sys

from common import BIN, Result, Sample, Summary, Table, Target, emit, measure, ratio

ANCHOR = "prefect --help"
COMMANDS: dict[str, list[str]] = {
    "driftline --help": [str(BIN / "driftline"), "--help"],
    "driftline models": [str(BIN / "driftline"), "models"],
    "import flows.train": [sys.executable, "-c", "import flows.train"],
    "python -c pass": [sys.executable, "-c", "pass"],
    'python -c "import prefect"': [sys.executable, "-c", "import prefect"],
    ANCHOR: [str(BIN / "prefect"), "--help"],
}
LIMITS = {"driftline --help": 0.3, "import flows.train": 1.5}  # seconds, median


def run(runs: int) -> dict[str, list[Sample]]:
    """Every command once per run, in turn."""
    samples: dict[str, list[Sample]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            samples[name].append(measure(command))
    return samples


def result(samples: dict[str, list[Sample]], command: str) -> Result:
    anchor = [s.seconds for s in samples[ANCHOR]]
    rows = []
    for name, runs in samples.items():
        wall = [s.seconds for s in runs]
        rows.append(
            [
                f"`{name}`",
                Summary.of(wall).cell(3),
                Summary.of([s.cpu_seconds for s in runs]).cell(3),
                Summary.of([s.peak_rss_mb for s in runs]).cell(0),
                "" if name == ANCHOR else f"{ratio(wall, anchor).median:.3g}x",
            ]
        )
    table = Table(
        f"Start-up, {len(samples[ANCHOR])} run(s) of each, alternating: median (min–max)",
        ["command", "wall s", "CPU s", "peak RSS MB", f"vs `{ANCHOR}`"],
        rows,
    )
    targets = []
    for name, limit in LIMITS.items():
        median = Summary.of([s.seconds for s in samples[name]]).median
        targets.append(Target(f"W6 `{name}`", f"≤ {limit} s", f"{median:.3f} s", median <= limit))
    return Result(
        workload="W6",
        title="start-up",
        command=command,
        tables=[table],
        targets=targets,
        notes=[
            "Each command runs in a fresh process; wall time includes the interpreter's own start "
            "(the `python -c pass` row), which no driftline change can take back.",
        ],
    )


def main() -> None:
    from common import arguments

    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs (a smoke test)")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    command = "uv run python bench/w6_startup.py " + ("--quick" if args.quick else f"--runs {runs}")
    emit(result(run(runs), command), args.out)


if __name__ == "__main__":
    main()
