"""The warm worker: a command handed to it runs in a forked child on the caller's stdio and exits with its code;
with no worker, or a killed one, the command runs in its own process as before.

The worker here warms up on a light library list (the mechanism is what is tested; the real list is driftline's
heavy libraries, checked by hand and by bench W5), and runs the real CLI through the real console script.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.cli.worker import RUNNER
from driftline.runtime import warm
from tests.conftest import Project

DRIFTLINE = str(Path(sys.executable).with_name("driftline"))

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(project: Project) -> Iterator[int]:
    pid = warm.start(project.state, RUNNER, libraries=("json",), timeout=60)
    try:
        yield pid
    finally:
        warm.stop(project.state)


def driftline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIFTLINE, *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ), timeout=120
    )


def worker_log(project: Project) -> str:
    return (warm.home(project.state) / warm.LOG_NAME).read_text()


def test_a_command_runs_in_the_worker_with_its_output_and_exit_code(project: Project, worker: int) -> None:
    listed = driftline("models", cwd=project.root)
    failed = driftline("lineage", "fraud:v9", cwd=project.root)

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["breast_cancer", "fraud"]
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: ") and "fraud:v9" in failed.stderr
    log = worker_log(project)
    assert "warm worker: models in child" in log and "warm worker: lineage fraud:v9 in child" in log


def test_the_child_takes_the_callers_working_directory_and_environment(project: Project, worker: int) -> None:
    other = project.root.parent / "elsewhere"
    (other / "deployments").mkdir(parents=True)
    (other / "deployments" / "churn.toml").write_text("")

    listed = subprocess.run(
        [DRIFTLINE, "models"],
        capture_output=True,
        text=True,
        cwd=other,
        env={**os.environ, "DRIFTLINE_PROJECT_DIR": str(other)},
        timeout=120,
    )

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["churn"]
    assert "warm worker: models in child" in worker_log(project)


def test_the_child_reads_prefects_settings_from_the_callers_environment(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect read its settings when the worker imported it; the child sees the caller's PREFECT_API_URL."""
    (tmp_path / "probe_runner.py").write_text(
        "from prefect.settings import get_current_settings\n\n\n"
        "def run(argv):\n    print('api', get_current_settings().api.url, argv)\n    return 3\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    warm.start(project.state, "probe_runner:run", libraries=("prefect.settings",), timeout=120)
    try:
        probed = subprocess.run(
            [DRIFTLINE, "status", "fraud"],
            capture_output=True,
            text=True,
            cwd=project.root,
            env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
            timeout=120,
        )
    finally:
        warm.stop(project.state)

    assert probed.returncode == 3, probed.stderr
    assert probed.stdout.strip() == "api http://127.0.0.1:9/api ['status', 'fraud']"


def test_help_and_server_commands_are_not_handed_over(project: Project, worker: int) -> None:
    assert driftline("check", "--help", cwd=project.root).returncode == 0
    assert driftline("server", "status", "--home", str(project.state / "none"), cwd=project.root).returncode == 1
    assert "in child" not in worker_log(project)
    assert not warm.forwardable(["serve", "fraud"]) and not warm.forwardable([])
    assert warm.forwardable(["monitor", "fraud"])


def test_a_killed_worker_leaves_commands_running_in_their_own_process(project: Project, worker: int) -> None:
    os.kill(worker, signal.SIGKILL)

    listed = driftline("models", cwd=project.root)

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["breast_cancer", "fraud"]
    assert "in child" not in worker_log(project)
    assert warm.running(project.state) is None
    assert warm.socket_path(project.state).exists()  # stale: nobody listens, so the command ran in its own process


def test_stop_ends_the_worker_and_removes_its_socket(project: Project, worker: int) -> None:
    status = driftline("server", "status", cwd=project.root)
    assert f"warm worker: pid {worker}" in status.stdout
    assert warm.running(project.state) == worker
    assert warm.stop(project.state)
    assert warm.running(project.state) is None and not warm.socket_path(project.state).exists()
    assert not warm.stop(project.state)
