"""Shared fixtures: a throwaway driftline project, generated data, and one real Prefect server per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

if TYPE_CHECKING:
    from driftline.loop.data import Batch
    from driftline.loop.lineage import Lineage
    from driftline.loop.modeling import Metrics, Split
    from driftline.loop.training import FittedModel
    from driftline.registry import Registry
    from driftline.spec import ModelSpec

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Before any test imports bentoml: its model store lives in a session temp dir, never the user's home.
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="driftline-bentoml-")
    for name, value in {
        "WHYLOGS_NO_ANALYTICS": "True",
        "BENTOML_DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }.items():
        os.environ[name] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.get("BENTOML_HOME", ""), ignore_errors=True)


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    """One AUTOCOMMIT connection to the local PostgreSQL server for the session.

    If it cannot be reached: a failure under CI, a skip elsewhere.
    """
    import sqlalchemy as sa

    admin = sa.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        connection = admin.connect()
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES} is not reachable: {error.orig}"
        if os.environ.get("CI"):  # CI's machine has PostgreSQL: a missing server there is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)  # a developer's machine without PostgreSQL still runs the other registry tests
    try:
        yield connection
    finally:
        connection.close()
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_admin: Any) -> Iterator[str]:
    """A fresh, empty database on the local server for one test, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"driftline_test_{uuid.uuid4().hex[:12]}"
    postgres_admin.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        postgres_admin.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Project:
    """A driftline project in a temp dir: deployments/ and expectations/ copied from the repo, its own state."""

    root: Path
    state: Path

    @property
    def fraud_data(self) -> Path:
        return self.root / "data" / "fraud"

    def write_fraud_batch(self, name: str, frame: pd.DataFrame) -> Path:
        self.fraud_data.mkdir(parents=True, exist_ok=True)
        path = self.fraud_data / name
        frame.to_parquet(path, index=False)
        return path


def new_project(base: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project under ``base``, made current through the environment for as long as ``monkeypatch`` lasts."""
    root = base / "project"
    shutil.copytree(REPO / "deployments", root / "deployments", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    shutil.copytree(REPO / "expectations", root / "expectations")
    for spec in (root / "deployments").glob("*.toml"):  # tests write a batch whole, then run: no settling wait
        if "[monitor]" not in spec.read_text():
            with spec.open("a") as toml:
                toml.write("\n[monitor]\nsettle_seconds = 0\n")
    state = base / "state"
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(root))
    monkeypatch.setenv("DRIFTLINE_HOME", str(state))
    for name in ("DRIFTLINE_REGISTRY_URL", "DRIFTLINE_PROFILE_STORE"):
        monkeypatch.delenv(name, raising=False)
    return Project(root=root, state=state)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    return new_project(tmp_path, monkeypatch)


@pytest.fixture
def fraud_frame() -> pd.DataFrame:
    from driftline.examples.fraud import generate

    return generate(3000, seed=11)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Prefect server (SQLite, temp home, free loopback port) for the whole session; stopped after."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from driftline.runtime import server

    home = tmp_path_factory.mktemp("prefect-home")
    info = server.start(home, server.free_port())
    try:
        with temporary_settings(updates={PREFECT_API_URL: info.api_url}):
            yield info.api_url
            # Deliver queued logs and events while the server still answers.
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)
    finally:
        server.stop(home)


def make_lineage(model: str = "fraud", version: str = "v1", **fields: object) -> Lineage:
    """A complete, made-up lineage for registry tests that need a version but not a trained model."""
    from driftline.loop.lineage import Lineage

    values: dict[str, object] = {
        "model": model,
        "version": version,
        "tag": f"{model}:{version}",
        "reason": "test",
        "data_fingerprint": "0" * 64,
        "data_sources": ["generated"],
        "rows": 500,
        "suite": f"{model}.json",
        "suite_digest": "0" * 64,
        "profile_path": f"memory://profiles/{model}/reference/{version}.bin",
        "holdout_path": f"memory://holdouts/{model}/{version}.parquet",
        "holdout_digest": "0" * 64,
        "holdout_rows": 100,
        "split_seed": 0,
        "holdout_fraction": 0.2,
        "estimator": "xgboost",
        "params": {},
        "seed": 0,
        "metrics": {},
        "gate": {},
        "schema": {},
        "code_version": None,
        "code_dirty": None,
        "lock_digest": None,
        "flow_run_id": None,
    }
    return Lineage.model_validate(values | fields)


def mark_checked(registry: Registry, model: str, version: str) -> None:
    """Record every check a champion needs as passed, as a train run leaves a version it promotes."""
    from driftline.registry import CheckStatus
    from driftline.registry.records import REQUIRED_CHECKS

    for check in REQUIRED_CHECKS:
        registry.record_check(model, version, check, CheckStatus.PASSED, "marked passed by the test")


# -- a fraud model fitted on generated data, with the lineage the train flow would build ------------------------------


def make_batch(frame: pd.DataFrame, origin: str = "generated") -> Batch:
    from driftline.loop.data import Batch, fingerprint

    return Batch(origin=origin, frame=frame, fingerprint=fingerprint(frame))


@dataclass(frozen=True)
class Trained:
    """A fitted fraud challenger and everything the train flow knows about it before packaging."""

    spec: ModelSpec
    batch: Batch
    split: Split
    fitted: FittedModel
    metrics: Metrics

    def lineage(self, reason: str = "test") -> Lineage:
        """The lineage the train flow would record for it, before packaging gives it a version."""
        return make_lineage(
            self.spec.name,
            version=None,
            tag=None,
            reason=reason,
            data_fingerprint=self.batch.fingerprint,
            data_sources=[self.batch.origin],
            rows=self.batch.rows,
            suite=self.spec.suite_path.name,
            profile_path="memory://profiles/fraud/reference/x.bin",
            holdout_path="memory://holdouts/fraud/x.parquet",
            holdout_digest=self.split.holdout_digest,
            holdout_rows=len(self.split.holdout),
            split_seed=self.split.seed,
            holdout_fraction=self.split.fraction,
            estimator=self.spec.estimator.kind,
            params=self.spec.estimator.params,
            seed=self.spec.estimator.seed,
            metrics=self.metrics.values,
            gate={"accepted": True},
            schema=self.fitted.schema.as_dict(),
        )


@pytest.fixture
def trained_fraud(project: Project, fraud_frame: pd.DataFrame) -> Trained:
    from driftline.spec import load_spec
    from tasks.evaluation import evaluate_model
    from tasks.training import fit_model, split_holdout

    spec = load_spec("fraud", {"estimator.params.n_estimators": 50})
    batch = make_batch(fraud_frame, "fraud-3000")
    split = split_holdout.fn(spec, batch=batch)
    fitted = fit_model.fn(spec, split=split)
    return Trained(spec, batch, split, fitted, evaluate_model.fn(spec, model=fitted.model, split=split))


# -- one `driftline serve` of a fitted fraud model, for the reliability tests of the service --------------------------


def save_version(trained: Trained, reason: str = "test") -> str:
    """Save ``trained`` in the model store and record it in the project's registry (no Prefect); return its tag."""
    from driftline.loop import store
    from driftline.registry import open_registry

    lineage = trained.lineage(reason)
    tag = store.save(
        trained.spec.name,
        trained.fitted.model,
        classifier=True,
        labels={},
        lineage=lineage.model_dump(mode="json"),
        schema=trained.fitted.schema.as_dict(),
    )
    version = tag.split(":", 1)[1]
    packaged = lineage.model_copy(update={"version": version, "tag": tag, "model_files": store.digests(tag)})
    open_registry().record_version(trained.spec.name, version, tag, packaged)
    return tag


def serve_command(model: str, version: str, port: int) -> list[str]:
    import sys

    return [sys.executable, "-m", "driftline.cli", "serve", model, "--version", version, "--port", str(port)]


@dataclass(frozen=True)
class Service:
    """A running `driftline serve` (its pid: the supervisor of bentoml serve and its workers) and its log."""

    url: str
    tag: str
    pid: int
    log: Path
    rows: list[dict[str, object]]  # valid request rows


@pytest.fixture(scope="session")
def fraud_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`driftline serve` of a fitted fraud model on a free loopback port, one for the session; stopped after."""
    import time

    import httpx

    from driftline.examples.fraud import generate
    from driftline.runtime.processes import launch, stop_group
    from driftline.runtime.server import free_port
    from driftline.spec import load_spec
    from tasks.evaluation import evaluate_model
    from tasks.training import fit_model, split_holdout

    base = tmp_path_factory.mktemp("fraud-service")
    with pytest.MonkeyPatch.context() as monkeypatch:
        project = new_project(base, monkeypatch)
        spec = load_spec("fraud", {"estimator.params.n_estimators": 50})
        batch = make_batch(generate(3000, seed=11), "fraud-3000")
        split = split_holdout.fn(spec, batch=batch)
        fitted = fit_model.fn(spec, split=split)
        trained = Trained(spec, batch, split, fitted, evaluate_model.fn(spec, model=fitted.model, split=split))
        tag = save_version(trained)
        env = dict(os.environ)
    features = generate(200, seed=5)[spec.features.columns]
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in features.to_dict("records")]
    port = free_port()
    log = base / "serve.log"
    process = launch(serve_command("fraud", tag.split(":", 1)[1], port), log, env=env, cwd=project.root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "driftline serve was not ready in 120 s"
            time.sleep(0.3)
        yield Service(url, tag, process.pid, log, rows)
    finally:
        stop_group(process)
