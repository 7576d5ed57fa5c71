"""``make bench`` (bench/run.py): every workload script runs, a failing one is reported, hand-written notes are kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PASSING = """
import json, sys
out = sys.argv[sys.argv.index("--out") + 1]
quick = "--quick" in sys.argv
result = {
    "workload": "W1",
    "title": "a fake train workload",
    "command": "python w1_fake.py" + (" --quick" if quick else ""),
    "tables": [{"title": "Fake figures", "columns": ["side", "wall s"], "rows": [["driftline", "1.00"]]}],
    "targets": [
        {"name": "W1 fast", "goal": "<= 2 s", "measured": "1.00 s", "met": True},
        {"name": "W1 lean", "goal": "<= 1 GiB", "measured": "2 GiB", "met": False},
    ],
    "notes": ["quick" if quick else "full", "args: " + " ".join(sys.argv[3:])],
}
open(out, "w").write(json.dumps(result))
"""

FAILING = """
import sys
print("loading the fake model", file=sys.stderr)
print("RuntimeError: the fake service never became ready", file=sys.stderr)
sys.exit(3)
"""


def bench(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], str]:
    scripts = tmp_path / "bench"
    scripts.mkdir(exist_ok=True)
    (scripts / "w1_fake.py").write_text(PASSING)
    (scripts / "w4_broken.py").write_text(FAILING)
    (scripts / "helper.py").write_text("raise SystemExit('not a workload: never run')\n")
    notes = tmp_path / "notes.md"
    notes.write_text("## Measured by hand\n\nThe demo takes about 10 s.\n")
    doc = tmp_path / "benchmarks.md"
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--bench-dir", str(scripts), "--doc", str(doc)]
    completed = subprocess.run(
        [*command, "--notes", str(notes), *options], capture_output=True, text=True, timeout=120, check=False
    )
    return completed, doc.read_text() if doc.exists() else ""


def test_a_failing_workload_is_reported_with_its_stderr_and_the_others_still_run(tmp_path: Path) -> None:
    completed, doc = bench(tmp_path)

    assert completed.returncode == 1
    assert "## W1: a fake train workload" in doc
    assert "| W1 | W1 lean | <= 1 GiB | 2 GiB | **not met** |" in doc
    assert "Targets: 1 of 2 met; 1 workload(s) failed" in doc
    assert "## W4: failed" in doc and "exit code 3" in doc
    assert "RuntimeError: the fake service never became ready" in doc
    assert "not a workload" not in doc


def test_the_document_keeps_the_hand_written_notes_and_names_the_machine_and_the_command(tmp_path: Path) -> None:
    _, doc = bench(tmp_path)

    assert doc.rstrip().endswith("The demo takes about 10 s.")
    assert "| python |" in doc and "| prefect |" in doc
    assert f"--doc {tmp_path / 'benchmarks.md'}" in doc
    assert "Not in this run: W2" in doc


def test_only_picks_workloads_and_quick_is_passed_on_and_said(tmp_path: Path) -> None:
    completed, doc = bench(tmp_path, "--only", "w1", "--quick")

    assert completed.returncode == 0, completed.stderr
    assert "**Quick run**" in doc
    assert "`python w1_fake.py --quick`" in doc and "- quick" in doc
    assert "W4" not in doc.split("Not in this run:")[0].split("## W1")[1]
    assert "W4 (serving" in doc


def test_set_passes_arguments_to_one_workload_only_and_the_command_keeps_them_quoted(tmp_path: Path) -> None:
    completed, doc = bench(tmp_path, "--only", "W1", "--set", "W1=--sizes 1000 10000", "--set", "W4=--seconds 9")

    assert completed.returncode == 0, completed.stderr
    assert "- args: --sizes 1000 10000" in doc
    assert "--seconds" not in doc.split("- args:")[1].splitlines()[0]
    assert "--set 'W1=--sizes 1000 10000'" in doc


def test_set_without_a_workload_is_refused_naming_the_form(tmp_path: Path) -> None:
    completed, _ = bench(tmp_path, "--set", "--sizes 1000")

    assert completed.returncode != 0
    assert 'must be WN="ARGS"' in completed.stderr


def test_the_workload_scripts_follow_the_contract(tmp_path: Path) -> None:
    """Every bench/wN_name.py takes --runs, --out and --quick (so make bench and bench-quick can run it)."""
    scripts = sorted((ROOT / "bench").glob("w*_*.py"))
    assert scripts, "no workload script in bench/"
    for script in scripts:
        completed = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert completed.returncode == 0, f"{script.name} --help: {completed.stderr}"
        for option in ("--runs", "--out", "--quick"):
            assert option in completed.stdout, f"{script.name} takes no {option}"
