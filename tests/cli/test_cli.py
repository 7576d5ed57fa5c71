"""The driftline CLI: fast help, readable registry views, and clear errors instead of tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftline.cli import COMMANDS, app
from driftline.registry import open_registry
from tests.conftest import REPO, Project, make_lineage, mark_checked

runner = CliRunner()


HEAVY = (
    "pandas",
    "numpy",
    "prefect",
    "great_expectations",
    "whylogs",
    "bentoml",
    "sklearn",
    "xgboost",
    "pyarrow",
    "sqlalchemy",
    "scipy",
)


def test_help_imports_no_heavy_library() -> None:
    """``driftline --help`` and every command's ``--help``, as the console script runs them, import none of them."""
    from driftline.cli import SERVER_COMMANDS

    helps = [[], *([name] for name, _ in COMMANDS), ["server"], *(["server", name] for name, _ in SERVER_COMMANDS)]
    code = (
        "import sys\n"
        "from driftline.cli import app\n"
        f"for args in {helps!r}:\n"
        "    try:\n        app([*args, '--help'], prog_name='driftline')\n    except SystemExit as exit:\n"
        "        assert exit.code == 0, (args, exit.code)\n"
        f"print('HEAVY', sorted({{m.partition('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert "HEAVY []" in result.stdout
    assert "train" in result.stdout and "lineage" in result.stdout and "Usage: driftline server start" in result.stdout


def test_the_console_script_prints_help(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("driftline")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert result.stdout.startswith("Usage: driftline [OPTIONS] COMMAND [ARGS]...")
    assert all(f"  {name} " in result.stdout for name, _ in COMMANDS)


def _seed_registry() -> None:
    registry = open_registry()
    lineage = {"gate": {"metric": "roc_auc", "challenger": 0.91}, "rows": 500, "data_fingerprint": "ab" * 32}
    registry.record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1", **lineage))
    registry.record_gate("fraud", True, "first model: roc_auc 0.9100", {}, "run-1")
    mark_checked(registry, "fraud", "v1")
    registry.promote("fraud", "v1", None, actor="tester", reason="first model", evidence={})
    registry.record_gate("fraud", False, "roc_auc 0.80 vs champion v1 0.91", {}, "run-2")


def test_status_ledger_and_lineage(project: Project) -> None:
    _seed_registry()
    status = runner.invoke(app, ["status", "fraud"])
    assert status.exit_code == 0, status.output
    assert "champion v1" in status.output and "rejected" in status.output and "accepted" in status.output
    ledger = runner.invoke(app, ["ledger", "fraud"])
    assert ledger.exit_code == 0 and "promote" in ledger.output and "tester" in ledger.output
    lineage = runner.invoke(app, ["lineage", "fraud"])
    assert lineage.exit_code == 0 and '"rows": 500' in lineage.output
    assert runner.invoke(app, ["lineage", "fraud:v1"]).output == lineage.output
    missing = runner.invoke(app, ["lineage", "fraud:v9"])
    assert missing.exit_code == 1
    assert "fraud:v9: no such version in the registry (versions: v1)" in missing.output


def test_status_shows_each_gate_decisions_outcome(project: Project) -> None:
    _seed_registry()  # two older records: accepted and rejected, without an outcome
    registry = open_registry()
    for outcome in ("not_better", "unchanged", "unservable"):  # status shows the last five
        registry.record_gate("fraud", False, f"the {outcome} reason", {"outcome": outcome}, "run-3")

    result = runner.invoke(app, ["status", "fraud"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[2].strip(): line for line in result.output.splitlines() if line.count("│") == 4}
    assert {"accepted", "rejected", "not better", "unchanged", "unservable"} <= set(rows)
    assert "the unservable reason" in rows["unservable"]


def test_names_and_reasons_are_shown_as_written_not_read_as_markup(project: Project) -> None:
    registry = open_registry()
    registry.record_version("fraud", "v[/x]", "fraud:v[/x]", make_lineage("fraud", "v[/x]"))
    mark_checked(registry, "fraud", "v[/x]")
    registry.promote("fraud", "v[/x]", None, actor="[bold]mallory", reason="see [red]this[/red]", evidence={})
    registry.record_gate("fraud", True, "roc_auc [/] 0.91", {}, "run-1")

    status = runner.invoke(app, ["status", "fraud"], env={"COLUMNS": "200"})
    ledger = runner.invoke(app, ["ledger", "fraud"], env={"COLUMNS": "200"})

    assert status.exit_code == 0, status.output
    assert "champion v[/x]" in status.output and "roc_auc [/] 0.91" in status.output
    assert ledger.exit_code == 0, ledger.output
    assert "[bold]mallory" in ledger.output and "see [red]this[/red]" in ledger.output


def test_status_without_champion_says_what_to_run(project: Project) -> None:
    result = runner.invoke(app, ["status", "fraud"])
    assert result.exit_code == 0
    assert "no champion yet (run `driftline train fraud`)" in result.output


def test_bad_override_is_an_error_not_a_traceback(project: Project) -> None:
    result = runner.invoke(app, ["train", "fraud", "--set", "estimator.kind=xgb"])
    assert result.exit_code == 1
    assert "fraud.toml" in result.output and "estimator.kind" in result.output
    assert "Traceback" not in result.output


def test_every_command_reports_errors_the_same_way_from_either_entry_point(project: Project) -> None:
    # One error path for every command (and the server subcommands): a red "error:" line on stderr, exit code 1.
    for args, message in (
        (["lineage", "fraud"], "error: fraud: no champion yet; give MODEL:VERSION"),
        (["serve", "fraud"], "error: fraud: no champion yet (run `driftline train fraud`)"),
        (["backtest", "fraud", "--min-drifted", "0"], "error: 1 validation error for Drift\nmin_drifted"),
    ):
        result = runner.invoke(app, args)
        module = subprocess.run(
            [sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True, cwd=project.root
        )
        assert (result.exit_code, module.returncode) == (1, 1), (args, result.output)
        assert module.stderr == result.stderr and module.stderr.startswith(message), (args, module.stderr)
        assert "Traceback" not in module.stderr


def test_check_validates_spec_and_suite(project: Project) -> None:
    # The data side of `check` is tested in tests/cli/test_check.py; --no-data checks the spec and suite alone.
    result = runner.invoke(app, ["check", "fraud", "--no-data"])
    assert result.exit_code == 0, result.output
    assert "22 expectations" in result.output and "data: not read (--no-data)" in result.output
    suite = project.root / "expectations" / "fraud.json"
    suite.write_text(
        suite.read_text().replace("expect_column_values_to_not_be_null", "expect_column_values_to_not_be_nul", 1)
    )
    broken = runner.invoke(app, ["check", "fraud", "--no-data"])
    assert broken.exit_code == 1
    assert "fraud.json: 22 expectations in the file but GX loaded 21" in broken.output
    assert "expectations[10] (expect_column_values_to_not_be_nul): unknown expectation type" in broken.output
    assert "Traceback" not in broken.output


@pytest.mark.integration
def test_train_command_against_a_running_server(project: Project, prefect_server: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    result = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "train", "breast_cancer"],
        capture_output=True,
        text=True,
        env=env,
        cwd=project.root,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "breast_cancer: promoted breast_cancer:" in result.stdout
    assert "/runs/flow-run/" in result.stdout
    champion = open_registry().champion("breast_cancer")
    assert champion is not None
    status = runner.invoke(app, ["status", "breast_cancer"])
    assert f"champion {champion.version}" in status.output


def test_drift_and_backtest_read_the_stored_batches(project: Project) -> None:
    registry = open_registry()
    column = {"column": "amount", "kind": "numeric", "method": "hellinger", "threshold": 0.06}
    for index, drifted in enumerate([False, True, True, False, True]):
        fingerprint = f"{index:064d}"
        registry.claim_batch("fraud", fingerprint, f"batch-{index}.parquet")
        drift = {  # as stored before statuses existed: a score against a fixed threshold
            "model": "fraud",
            "version": "v1",
            "batch": fingerprint,
            "reference": "r",
            "rows": 500,
            "columns": [column | {"score": 0.2 if drifted else 0.01}],
            "drifted": ["amount"] if drifted else [],
        }
        registry.finish_batch(
            "fraud", fingerprint, status="accepted", drift_detected=drifted, drift=drift, report_path=f"r{index}.html"
        )
    latest = runner.invoke(app, ["drift", "fraud"])
    assert latest.exit_code == 0 and "batch-4.parquet" in latest.output and "r4.html" in latest.output
    replay = runner.invoke(app, ["backtest", "fraud"])
    assert replay.exit_code == 0, replay.output
    # Defaults: 1 of 1 with a 60-minute cooldown; these batches arrive within a second, so only the first asks.
    assert "5 batches and traffic windows replayed; the policy would have flagged 3 and requested 1 retrain(s)" in (
        replay.output
    )
    assert replay.output.count("skipped_cooldown") == 2


def test_replay_says_where_the_batch_went_and_what_runs_next(project: Project) -> None:
    from driftline.examples.fraud import generate
    from driftline.loop import data
    from driftline.settings import get_settings
    from driftline.spec import load_spec

    landing = project.fraud_data / "landing" / "late.parquet"
    source = project.write_fraud_batch("batch-0001.parquet", generate(200, 1))
    folders = {}
    for path, where in [(landing, "landing"), (source, "source")]:
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(200, 1 if where == "source" else 2).to_parquet(path, index=False)
        (batch,) = data.load_source(load_spec("fraud"), str(path))
        if where == "landing":
            open_registry().claim_batch("fraud", batch.fingerprint, str(path))
        kept = data.quarantine(batch, "fraud", get_settings().quarantine_dir, {}, where=where)  # type: ignore[arg-type]
        if where == "landing":
            open_registry().finish_batch("fraud", batch.fingerprint, status="quarantined")
        folders[where] = kept.parent.name

    moved = runner.invoke(app, ["replay", "fraud", folders["landing"]])
    assert moved.exit_code == 0, moved.output
    assert f"moved back to the landing area: {landing}" in moved.output
    assert "claim is released" in moved.output and "now: driftline monitor fraud" in moved.output

    stayed = runner.invoke(app, ["replay", "fraud", folders["source"]])
    assert stayed.exit_code == 0, stayed.output
    assert f"{source} still holds the same bytes: nothing moved" in stayed.output
    assert "now: driftline train fraud" in stayed.output

    again = runner.invoke(app, ["replay", "fraud", folders["source"]])
    assert again.exit_code == 1 and "already replayed" in again.output and "Traceback" not in again.output


def test_demo_runs_on_the_demos_own_server_never_the_projects(monkeypatch: pytest.MonkeyPatch) -> None:
    from driftline.cli import base, demo

    ran: list[object] = []
    monkeypatch.setattr(demo, "connect", lambda: "the demo's server")
    monkeypatch.setattr(demo, "run", ran.append)
    monkeypatch.setattr(base, "connect", lambda: pytest.fail("the demo connected to the project's server"))
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert ran == ["the demo's server"]
