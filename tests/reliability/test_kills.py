"""SIGKILL a train, retrain or monitor at a known point; nothing is lost, nothing lingers, the next run completes.

Each test starts ``driftline <command>`` as a subprocess in a process group of its own, with
``DRIFTLINE_TEST_PAUSE_AT`` naming the point (``driftline.settings.pause_at``), waits for "driftline: paused at
<point>" on its stderr and SIGKILLs the group. Then:

- the champion and the ledger are as they were (a kill inside the promotion transaction commits nothing);
- no process the run started survives (``bentoml serve`` and its workers included), and the port it served on is free;
- the next ``driftline`` command completes, and on its way marks the killed run Crashed: no Running zombie is left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from driftline.examples.fraud import generate
from driftline.runtime.server import port_free
from tests.conftest import Project, new_project

pytestmark = pytest.mark.integration

PAUSE_TIMEOUT_S = 400  # a train up to its servability check, on a busy 2-core machine


@dataclass(frozen=True)
class Killed:
    """A run killed at a pause point: its pid, the processes it had started, and the ports they listened on."""

    pid: int
    descendants: list[int]
    ports: list[int]
    stderr: str


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except OSError:
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _ports(pids: list[int]) -> list[int]:
    """The ``--port N`` of every ``bentoml serve`` among ``pids``."""
    ports = []
    for pid in pids:
        args = _cmdline(pid)
        if "serve" in args and "--port" in args and any("bentoml" in a for a in args):
            ports.append(int(args[args.index("--port") + 1]))
    return ports


def _command(project: Project, *args: str, pause: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DRIFTLINE_TEST_PAUSE_AT"}
    if pause:
        env["DRIFTLINE_TEST_PAUSE_AT"] = pause
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
    with (project.state.parent / f"{args[0]}-{pause or 'rerun'}.stderr").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", *args],
            cwd=project.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group, as a scheduler or a shell would start it
        )


def _stderr(project: Project, command: str, pause: str | None) -> str:
    path = project.state.parent / f"{command}-{pause or 'rerun'}.stderr"
    return path.read_text(errors="replace") if path.exists() else ""


def kill_at(project: Project, point: str, *args: str) -> Killed:
    """Run ``driftline ARGS`` until it pauses at ``point``, then SIGKILL its process group."""
    process = _command(project, *args, pause=point)
    try:
        deadline = time.monotonic() + PAUSE_TIMEOUT_S
        while f"driftline: paused at {point}" not in _stderr(project, args[0], point):
            if process.poll() is not None:
                pytest.fail(f"driftline {' '.join(args)} ended before {point}:\n{_stderr(project, args[0], point)}")
            if time.monotonic() > deadline:
                pytest.fail(f"driftline {' '.join(args)} never paused at {point}:\n{_stderr(project, args[0], point)}")
            time.sleep(0.5)
        descendants = _descendants(process.pid)
        ports = _ports(descendants)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return Killed(process.pid, descendants, ports, _stderr(project, args[0], point))


def rerun(project: Project, *args: str) -> str:
    """Run ``driftline ARGS`` to the end; fail unless it exits 0. Returns its stderr."""
    process = _command(project, *args)
    code = process.wait(timeout=PAUSE_TIMEOUT_S)
    stderr = _stderr(project, args[0], None)
    assert code == 0, f"driftline {' '.join(args)} exited {code}:\n{stderr}"
    return stderr


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def assert_no_orphans(killed: Killed) -> None:
    """Nothing the killed run started survives it, and the ports its services held are free again."""
    assert _wait_until(lambda: not any(_alive(pid) for pid in killed.descendants), 20), [
        (pid, _cmdline(pid)) for pid in killed.descendants if _alive(pid)
    ]
    for port in killed.ports:
        assert _wait_until(lambda port=port: port_free(port), 10), f"port {port} still held"  # type: ignore[misc]


def _runs(project_tag: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[project_tag])),
                sort=FlowRunSort.START_TIME_ASC,
                limit=200,
            )
        )


def assert_crashed_not_running(killed: Killed, flows: set[str]) -> None:
    """The killed run's flow runs (``flows``: names before the dash) ended Crashed; nothing of the project runs."""
    from driftline.oncall import events

    holder = re.compile(rf"driftline-holder:{re.escape(socket.gethostname())}:{killed.pid}(@\d+)?$")
    runs = _runs(events.project_tag())
    mine = [run for run in runs if any(holder.match(tag) for tag in run.tags)]
    assert {run.name.split("-")[0] for run in mine} == flows, [(r.name, r.tags) for r in runs]
    assert {run.state.type.value for run in mine} == {"CRASHED"}, [(r.name, r.state.type.value) for r in mine]
    assert [r.name for r in runs if r.state.type.value in ("RUNNING", "PENDING")] == []


@dataclass(frozen=True)
class Snapshot:
    champion: str | None
    ledger: list[tuple[str, str | None, str]]

    @classmethod
    def take(cls, model: str = "fraud") -> Snapshot:
        from driftline.registry import open_registry

        registry = open_registry()
        try:
            champion = registry.champion(model)
            ledger = [(e.action, e.from_version, e.to_version) for e in registry.ledger(model)]
        finally:
            registry.close()
        return cls(champion.version if champion else None, ledger)


@dataclass(frozen=True)
class Place:
    """Where the kill tests run: one project root and state directory, reset from a snapshot before each test.

    Every test runs at the same paths (the registry records absolute paths: profiles, holdouts, archived batches),
    so a snapshot restored there is the state a real run left, not a copy pointing elsewhere.
    """

    base: Path
    prefect_api: str

    @property
    def project(self) -> Project:
        return Project(root=self.base / "project", state=self.base / "state")

    def save(self, name: str) -> Path:
        snapshot = self.base.parent / f"{self.base.name}-{name}"
        for part in ("project", "state"):
            if (self.base / part).exists():
                shutil.copytree(self.base / part, snapshot / part, symlinks=True)
        return snapshot

    def restore(self, snapshot: Path, monkeypatch: pytest.MonkeyPatch, results: Path) -> Project:
        """Reset the place to ``snapshot`` and make it current; its runs keep Prefect results under ``results``."""
        for part in ("project", "state"):
            shutil.rmtree(self.base / part, ignore_errors=True)
            if (snapshot / part).exists():
                shutil.copytree(snapshot / part, self.base / part, symlinks=True)
        return self.use(monkeypatch, results)

    def use(self, monkeypatch: pytest.MonkeyPatch, results: Path) -> Project:
        """Make the project current (its commands talk to the session's Prefect server) while ``monkeypatch`` lasts."""
        project = self.project
        # Cached task results are scoped by the state directory's path, which every test here shares: each test keeps
        # its own, so a test never reads an answer an earlier test computed (a kill and its rerun still share).
        monkeypatch.setenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(results))
        monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
        monkeypatch.setenv("DRIFTLINE_HOME", str(project.state))
        monkeypatch.setenv("PREFECT_API_URL", self.prefect_api)
        for name in ("DRIFTLINE_REGISTRY_URL", "DRIFTLINE_PROFILE_STORE"):
            monkeypatch.delenv(name, raising=False)
        # open_registry keeps one engine per URL per process, and the URL is the same in every test: an engine of an
        # earlier test would still point at the database file the restore replaced.
        monkeypatch.setattr("driftline.registry._open", {})
        return project


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Place:
    base = tmp_path_factory.mktemp("kills")
    with pytest.MonkeyPatch.context() as monkeypatch:
        new_project(base, monkeypatch)
    return Place(base, prefect_server)


@pytest.fixture(scope="module")
def fresh(place: Place) -> Path:
    """A snapshot of a project with two batches of fraud data and no state yet."""
    for seed in (1, 2):
        place.project.write_fraud_batch(f"batch-{seed}.parquet", generate(1500, seed))
    return place.save("fresh")


@pytest.fixture(scope="module")
def with_champion(place: Place, fresh: Path) -> tuple[Path, str]:
    """A snapshot of that project after a first champion was trained through the CLI, once for the module; and its
    version (a weak model, so the killed run's challenger would beat it)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        project = place.restore(fresh, monkeypatch, place.base.parent / f"{place.base.name}-champion-results")
        stderr = rerun(
            project,
            "train",
            "fraud",
            "--set",
            "estimator.params.n_estimators=3",
            "--set",
            "estimator.params.max_depth=1",
            "--set",
            "gate.min_metric=0.5",
        )
        assert "Traceback" not in stderr
        champion = Snapshot.take().champion
        assert champion is not None
        return place.save("champion"), champion


def _no_new_bentoml(place: Place, snapshot: Path, monkeypatch: pytest.MonkeyPatch, results: Path) -> Iterator[Project]:
    before = set(_bentoml_descendants())  # the session's own services (e.g. the fuzz tests' fraud_service) stay
    yield place.restore(snapshot, monkeypatch, results)
    leftovers = [pid for pid in _bentoml_descendants() if pid not in before]
    assert leftovers == [], "a bentoml process of this test outlived it"


@pytest.fixture
def killable(place: Place, fresh: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Project]:
    """A project with two batches of fraud data and no champion, whose commands talk to the session's Prefect server."""
    yield from _no_new_bentoml(place, fresh, monkeypatch, tmp_path / "prefect-results")


@pytest.fixture
def championed(
    place: Place, with_champion: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Project]:
    """The same project with a first champion trained (restored from the module's snapshot, not trained again)."""
    snapshot, champion = with_champion
    for project in _no_new_bentoml(place, snapshot, monkeypatch, tmp_path / "prefect-results"):
        assert Snapshot.take().champion == champion, "the restored state lost the champion"
        yield project


def _bentoml_descendants() -> list[int]:
    return [pid for pid in _descendants(os.getpid()) if any("bentoml" in a for a in _cmdline(pid))]


# -- train -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["train.loaded", "train.fitted", "train.packaged"])
def test_a_train_killed_before_its_package_is_served_changes_nothing(killable: Project, point: str) -> None:
    before = Snapshot.take()
    killed = kill_at(killable, point, "train", "fraud")
    assert Snapshot.take() == before  # no champion, no ledger entry
    assert_no_orphans(killed)

    rerun(killable, "train", "fraud")
    assert_crashed_not_running(killed, {"train"})
    after = Snapshot.take()
    assert after.champion is not None and [entry[0] for entry in after.ledger] == ["promote"]


def test_a_train_killed_while_its_package_is_served_leaves_no_bentoml_and_frees_the_port(championed: Project) -> None:
    before = Snapshot.take()
    champion = before.champion
    killed = kill_at(championed, "train.servability", "train", "fraud")
    assert killed.ports, f"no bentoml serve was running at train.servability: {killed.descendants}"
    assert_no_orphans(killed)
    assert Snapshot.take() == before

    rerun(championed, "train", "fraud")
    assert_crashed_not_running(killed, {"train"})
    after = Snapshot.take()
    assert after.champion != champion and after.ledger[: len(before.ledger)] == before.ledger


def test_a_train_killed_inside_the_promotion_transaction_commits_nothing(championed: Project) -> None:
    before = Snapshot.take()
    champion = before.champion
    killed = kill_at(championed, "train.promoting", "train", "fraud")
    assert_no_orphans(killed)
    assert Snapshot.take() == before  # the champion stays, the ledger has no half-written promotion

    rerun(championed, "train", "fraud")
    assert_crashed_not_running(killed, {"train"})
    after = Snapshot.take()
    assert after.champion != champion
    assert after.ledger == [*before.ledger, ("promote", champion, after.champion)]


# -- retrain ---------------------------------------------------------------------------------------------------------


def test_a_retrain_killed_holding_its_lease_lets_the_next_retrain_run(championed: Project) -> None:
    before = Snapshot.take()
    killed = kill_at(championed, "retrain.leased", "retrain", "fraud")
    assert_no_orphans(killed)
    assert Snapshot.take() == before

    stderr = rerun(championed, "retrain", "fraud")
    assert_crashed_not_running(killed, {"retrain"})
    assert "marked Crashed: retrain-fraud" in stderr
    after = Snapshot.take()
    assert after.champion != before.champion  # the dead holder's lease was taken over, and the retrain trained


# -- monitor ---------------------------------------------------------------------------------------------------------


def _landing_batch(project: Project) -> Path:
    landing = project.fraud_data / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / "today.parquet"
    generate(800, 31).to_parquet(path, index=False)
    settled = time.time() - 3600  # long settled: ready at once (monitor.settle_seconds)
    os.utime(path, (settled, settled))
    return path


@pytest.mark.parametrize("point", ["monitor.claimed", "monitor.scoring", "monitor.archived"])
def test_a_monitor_killed_with_a_batch_claimed_leaves_it_to_the_next_run(championed: Project, point: str) -> None:
    from driftline.registry import open_registry

    _landing_batch(championed)
    before = Snapshot.take()
    killed = kill_at(championed, point, "monitor", "fraud")
    assert_no_orphans(killed)
    assert Snapshot.take() == before

    rerun(championed, "monitor", "fraud")
    assert_crashed_not_running(killed, {"monitor"})
    registry = open_registry()
    try:
        (batch,) = registry.batches("fraud")
    finally:
        registry.close()
    assert batch.status == "accepted", batch  # taken over and scored: not lost, not a duplicate
    assert Snapshot.take() == before
