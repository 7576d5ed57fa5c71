"""Every command in docs/runbook.md runs, in the runbook's order, on a project in the state the alerts describe."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.examples.fraud import generate
from driftline.runtime.processes import launched
from driftline.runtime.server import free_port
from tests.conftest import REPO, Project

pytestmark = pytest.mark.integration

RUNBOOK = REPO / "docs" / "runbook.md"
LONG_RUNNING = ("driftline serve ", "driftline serve-flows", "driftline server ")


def runbook_commands() -> list[str]:
    """The runbook's commands, first appearance first, each once."""
    found = re.findall(r"`(driftline [^`]+)`", RUNBOOK.read_text(encoding="utf-8"))
    return list(dict.fromkeys(command.strip() for command in found))


def test_the_runbook_names_only_real_commands() -> None:
    commands = runbook_commands()
    assert len(commands) >= 15
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback}
    names |= {g.name for g in app.registered_groups if g.name}
    for command in commands:
        assert command.split()[1] in names, f"docs/runbook.md: `{command}` is not a driftline command"


def _start_and_stop(args: list[str], ready: str, project: Project) -> None:
    """Start a long-running command, wait until it answers, stop it."""
    log = project.root / f"runbook-{args[0]}.log"
    with launched([sys.executable, "-m", "driftline.cli", *args], log, cwd=project.root) as process:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-2000:]
            if ready.startswith("http"):
                try:
                    if httpx.get(ready, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            elif ready in log.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{args} did not become ready: {log.read_text()[-2000:]}")


def test_every_runbook_command_runs(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from driftline.loop import data
    from driftline.registry import open_registry
    from driftline.settings import get_settings
    from driftline.spec import load_spec
    from flows.monitor import monitor
    from flows.train import train

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    monkeypatch.setenv("DRIFTLINE_PREFECT_SERVER_HOME", str(tmp_path / "own-server"))
    monkeypatch.setenv("DRIFTLINE_PREFECT_PORT", str(free_port()))
    # The state the alerts describe: two promotions, a monitored drifted batch, a quarantined batch, labeled rows.
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))
    weak = {"estimator.params.n_estimators": 2, "estimator.params.max_depth": 1, "gate.min_metric": 0.5}
    first, second = train(model="fraud", overrides=weak), train(model="fraud")
    assert first.promoted and second.promoted
    landing = project.fraud_data / "landing"
    landing.mkdir()
    generate(4000, 21, drift=True).to_parquet(landing / "drifted.parquet", index=False)
    monitor(model="fraud")
    held = project.root / "held.parquet"
    generate(300, 5).to_parquet(held, index=False)
    (batch,) = data.load_source(load_spec("fraud"), str(held))
    quarantined = data.quarantine(batch, "fraud", get_settings().quarantine_dir, {"validation": {}}).parent.name

    values = {"<model>": "fraud", "<version>": str(second.version), "<batch>": quarantined, "<file>": str(held)}
    runner = CliRunner()
    for command in runbook_commands():
        for placeholder, value in values.items():
            command = command.replace(placeholder, value)
        args = shlex.split(command)[1:]
        if command.startswith("driftline serve-flows"):
            _start_and_stop(args, "serving on", project)
        elif command.startswith("driftline serve "):
            port = free_port()
            _start_and_stop([*args, "--port", str(port)], f"http://127.0.0.1:{port}/readyz", project)
        elif command == "driftline server start":
            result = runner.invoke(app, args)
            assert result.exit_code == 0 and "UI" in result.output, result.output
        else:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, f"`{command}` exited {result.exit_code}: {result.output}"
    runner.invoke(app, ["server", "stop"])  # the runbook's own server, if its last command started one

    registry = open_registry()
    moves = [(e.action, e.to_version) for e in registry.ledger("fraud")]
    assert ("rollback", first.version) in moves and ("rollback", second.version) in moves  # undo ran too
    assert (get_settings().quarantine_dir / "fraud" / quarantined / "replayed.json").is_file()
