"""Every landed batch is processed exactly once: by two monitors at once, after a monitor is SIGKILLed holding a
claim, and after a profile-store failure mid-batch. Monitors run as real processes against one Prefect server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.examples.fraud import generate
from driftline.loop.data import fingerprint
from driftline.registry import BatchStatus, holder_dead, open_registry
from tests.conftest import REPO, Project, new_project

pytestmark = pytest.mark.integration

# Runs the monitor flow once and prints each outcome as [origin, status]; exits non-zero if the run failed.
MONITOR = """
import json
from flows.monitor import monitor
outcomes = monitor(model="fraud")
print("OUTCOMES " + json.dumps([[o.origin, str(o.status)] for o in outcomes]), flush=True)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Iterator[Project]:
    """One fraud project with a champion, shared by the tests here (each uses its own landing files)."""
    from flows.train import train

    with pytest.MonkeyPatch.context() as monkeypatch:
        project = new_project(tmp_path_factory.mktemp("exactly-once"), monkeypatch)
        for seed in (1, 2):
            project.write_fraud_batch(f"batch-{seed}.parquet", generate(3000, seed))
        assert train(model="fraud", overrides={"serving.check": False}).promoted  # servability: not the point here
        (project.fraud_data / "landing").mkdir()
        yield project


@pytest.fixture
def landing(trained: Project) -> Path:
    folder = trained.fraud_data / "landing"
    assert not list(folder.iterdir()), "a previous test left files in the landing area"
    return folder


def _start(prefect_server: str, **env: str) -> subprocess.Popen[str]:
    """A monitor run in its own process (and process group), configured like this test's project."""
    return subprocess.Popen(
        [sys.executable, "-c", MONITOR],
        cwd=REPO,
        env={**os.environ, "PREFECT_API_URL": prefect_server, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 420) -> tuple[int, list[list[str]], str]:
    """Wait for a monitor process: its exit code, its outcomes (empty if it failed) and its stderr."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    lines = [line for line in out.splitlines() if line.startswith("OUTCOMES ")]
    return process.returncode, json.loads(lines[-1].removeprefix("OUTCOMES ")) if lines else [], err


def _archived(project: Project) -> list[Path]:
    return sorted((project.state / "batches" / "fraud").glob("*.parquet"))


def _duplicates(project: Project) -> list[Path]:
    return sorted((project.state / "batches" / "fraud" / "duplicates").glob("*"))


def _land(landing: Path, name: str, seed: int, rows: int = 800) -> str:
    frame = generate(rows, seed)
    frame.to_parquet(landing / name, index=False)
    return fingerprint(frame)


def test_two_monitors_at_once_process_each_of_20_files_exactly_once(
    trained: Project, landing: Path, prefect_server: str
) -> None:
    fingerprints = {_land(landing, f"batch-{index:02d}.parquet", 100 + index): index for index in range(20)}
    archived_before = len(_archived(trained))

    started = time.monotonic()
    first, second = _start(prefect_server), _start(prefect_server)
    (code_1, outcomes_1, err_1), (code_2, outcomes_2, err_2) = _finish(first), _finish(second)
    elapsed = time.monotonic() - started

    assert code_1 == 0, err_1[-3000:]
    assert code_2 == 0, err_2[-3000:]
    statuses = Counter(status for _, status in outcomes_1 + outcomes_2)
    # Every file scored by exactly one of the two runs; the other found it busy or already gone, never a duplicate.
    assert statuses["accepted"] == 20, (statuses, outcomes_1, outcomes_2)
    assert statuses["duplicate"] == 0 and statuses["released"] == 0
    scored = sorted(origin for origin, status in outcomes_1 + outcomes_2 if status == "accepted")
    assert scored == [str(landing / f"batch-{index:02d}.parquet") for index in range(20)]
    assert list(landing.iterdir()) == []
    assert len(_archived(trained)) - archived_before == 20 and _duplicates(trained) == []
    registry = open_registry()
    accepted = {b.fingerprint for b in registry.batches("fraud", status=BatchStatus.ACCEPTED)}
    assert set(fingerprints) <= accepted
    assert not registry.batches("fraud", status=(BatchStatus.PROCESSING, BatchStatus.RELEASED))
    decided = Counter(d.fingerprint for d in registry.decisions("fraud", limit=1000) if d.fingerprint in fingerprints)
    assert decided == Counter(dict.fromkeys(fingerprints, 1))  # each scored, and judged by the policy, once
    runs = [dict(Counter(status for _, status in outcomes)) for outcomes in (outcomes_1, outcomes_2)]
    print(f"\ntwo monitors, 20 files: {elapsed:.1f} s; outcomes per run {runs}")


def test_a_monitor_killed_after_claiming_leaves_the_batch_to_the_next_run(
    trained: Project, landing: Path, prefect_server: str
) -> None:
    batch = _land(landing, "claimed.parquet", 301)
    content = (landing / "claimed.parquet").read_bytes()

    killed = _start(prefect_server, DRIFTLINE_TEST_PAUSE_AT="monitor.claimed")
    assert killed.stderr is not None
    deadline = time.monotonic() + 300
    for line in killed.stderr:
        if "paused at monitor.claimed" in line or time.monotonic() > deadline:
            break
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate()

    record = open_registry().batch("fraud", batch)
    assert record is not None and record.status is BatchStatus.PROCESSING, "the run was not stopped after its claim"
    assert record.holder is not None and holder_dead(record.holder)
    assert (landing / "claimed.parquet").read_bytes() == content  # untouched

    started = time.monotonic()
    code, outcomes, err = _finish(_start(prefect_server))
    elapsed = time.monotonic() - started

    assert code == 0, err[-3000:]
    assert outcomes == [[str(landing / "claimed.parquet"), "accepted"]]
    assert "took over the claim of" in err
    record = open_registry().batch("fraud", batch)
    assert record is not None and record.status is BatchStatus.ACCEPTED and record.stored_path
    assert Path(record.stored_path).read_bytes() == content and list(landing.iterdir()) == []
    print(f"\nthe next run took the dead run's claim over at once and scored it in {elapsed:.1f} s")


def test_a_profile_store_failure_mid_batch_loses_nothing_and_the_next_run_scores_it(
    trained: Project, landing: Path, prefect_server: str, tmp_path: Path
) -> None:
    batch = _land(landing, "transient.parquet", 302)
    content = (landing / "transient.parquet").read_bytes()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("the profile store cannot be written under a file")

    code, _, err = _finish(_start(prefect_server, DRIFTLINE_PROFILE_STORE=str(blocker / "profiles")))

    assert code != 0
    assert "released for the next run" in err and "cannot write profile" in err
    record = open_registry().batch("fraud", batch)
    assert record is not None and record.status is BatchStatus.RELEASED and record.stored_path is None
    assert (landing / "transient.parquet").read_bytes() == content  # still in the landing area, byte-identical

    code, outcomes, err = _finish(_start(prefect_server))

    assert code == 0, err[-3000:]
    assert outcomes == [[str(landing / "transient.parquet"), "accepted"]]  # scored, not a duplicate
    record = open_registry().batch("fraud", batch)
    assert record is not None and record.status is BatchStatus.ACCEPTED
    assert record.stored_path and Path(record.stored_path).read_bytes() == content


def test_a_registry_failure_after_the_archive_moves_the_file_back_and_releases_the_claim(
    trained: Project, landing: Path, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.errors import StoreError
    from driftline.monitoring import batches
    from flows.monitor import monitor

    batch = _land(landing, "unrecorded.parquet", 303)
    content = (landing / "unrecorded.parquet").read_bytes()
    archived_before = _archived(trained)

    def unreachable(*args: object, **kwargs: object) -> None:
        raise StoreError("registry sqlite:///x: cannot record a batch's outcome: disk I/O error (nothing was written)")

    with monkeypatch.context() as failing:
        failing.setattr(batches, "record_scored", unreachable)
        state = monitor(model="fraud", return_state=True)

    assert state.is_failed() and "released for the next run" in str(state.message)
    assert (landing / "unrecorded.parquet").read_bytes() == content  # moved back from the archive
    assert _archived(trained) == archived_before
    record = open_registry().batch("fraud", batch)
    assert record is not None and record.status is BatchStatus.RELEASED

    (outcome,) = monitor(model="fraud")
    assert outcome.status == "accepted" and list(landing.iterdir()) == []
