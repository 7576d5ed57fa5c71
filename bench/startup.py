"""How fast driftline's entry points start, side by side with Prefect's own CLI, in one run.

    uv run python bench/startup.py [--runs 10]

Prints the median and p90 wall time of each command over ``--runs`` runs and the ratio to ``prefect --help``.
driftline's target: ``driftline --help`` under 1 s, because it imports no heavy library (GX, whylogs, BentoML,
Prefect) until a command needs it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent

COMMANDS = {
    "driftline --help": [str(BIN / "driftline"), "--help"],
    "driftline models": [str(BIN / "driftline"), "models"],
    "import flows.train": [sys.executable, "-c", "import flows.train"],
    "prefect --help": [str(BIN / "prefect"), "--help"],
}


def measure(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results = {name: measure(command, args.runs) for name, command in COMMANDS.items()}
    baseline = statistics.median(results["prefect --help"])
    print(f"{'command':<22} {'median s':>9} {'p90 s':>7} {'vs prefect --help':>18}")
    for name, times in results.items():
        median = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(f"{name:<22} {median:>9.3f} {p90:>7.3f} {median / baseline:>17.2f}x")


if __name__ == "__main__":
    main()
