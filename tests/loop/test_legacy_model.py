"""A model saved by the layout before the package had folders still loads, predicts the same, and serves.

tests/fixtures/legacy-fraud.bentomodel was exported at commit 9f7c7a1 (see make_legacy_model.py); its pickle names
``driftline.estimators.EncodedLabelClassifier`` and ``driftline.modeling.as_text``, which the compatibility shims
keep importable. legacy-fraud.json holds the predictions it gave then for ``generate(5, seed=4)``.

It was packaged before driftline recorded file digests, so it is refused until they are recorded (`driftline
trust`, docs/security.md); the tests below record them the way that command does, then load and serve it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftline import libs
from driftline.errors import ModelIntegrityError
from driftline.examples.fraud import generate
from driftline.loop import store
from driftline.registry import Registry
from driftline.runtime.processes import stop_group
from driftline.runtime.server import free_port
from driftline.spec import load_spec
from tests.conftest import REPO, make_lineage

FIXTURES = REPO / "tests" / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "legacy-fraud.json").read_text())
OLD_PICKLED_PATHS = (b"driftline.estimators", b"EncodedLabelClassifier", b"driftline.modeling", b"as_text")


@pytest.fixture(scope="module")
def legacy_tag() -> str:
    """Import the fixture into the session's model store (a temp BENTOML_HOME, see tests/conftest.py) once."""
    assert "driftline-bentoml-" in os.environ["BENTOML_HOME"], "tests must not touch the user's model store"
    bentoml = libs.bentoml()
    tag = str(EXPECTED["tag"])
    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        bentoml.models.import_model(str(FIXTURES / "legacy-fraud.bentomodel"))
    return tag


def _rows() -> pd.DataFrame:
    spec = load_spec("fraud")
    rows = generate(int(EXPECTED["rows"]), seed=int(EXPECTED["rows_seed"]))
    return rows[spec.features.numeric + spec.features.categorical]


def test_the_fixture_pickles_the_old_module_paths(legacy_tag: str) -> None:
    # Without these names in the pickle the test below would prove nothing about the shims.
    saved = Path(libs.bentoml().models.get(legacy_tag).path) / "saved_model.pkl"
    pickled = saved.read_bytes()
    assert all(name in pickled for name in OLD_PICKLED_PATHS)
    assert b"driftline.loop" not in pickled


def test_a_model_without_recorded_digests_is_refused_before_it_is_unpickled(legacy_tag: str) -> None:
    with pytest.raises(ModelIntegrityError, match=r"no file digests are recorded .* `driftline trust fraud:"):
        store.load(legacy_tag, None)


def test_a_model_saved_before_the_restructure_loads_and_predicts_the_same(legacy_tag: str) -> None:
    model = store.load(legacy_tag, store.digests(legacy_tag))  # the digests `driftline trust` would record
    rows = _rows()
    assert model.predict(rows).tolist() == EXPECTED["predictions"]
    assert np.allclose(model.predict_proba(rows)[:, 1], EXPECTED["probabilities"], rtol=0, atol=1e-6)


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()}
        for row in rows.to_dict(orient="records")
    ]


@pytest.fixture
def serve_env(legacy_tag: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a hand-started ``bentoml serve`` of the legacy version; state (traffic profiles) in tmp."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("DRIFTLINE_")}
    state = tmp_path / "state"
    # The version as an upgraded registry holds it (a lineage without digests), then trusted: digests recorded.
    registry = Registry(f"sqlite:///{state / 'registry.db'}")
    version = legacy_tag.split(":", 1)[1]
    registry.record_version("fraud", version, legacy_tag, make_lineage("fraud", version))
    registry.record_files("fraud", version, store.digests(legacy_tag), "test: the exported legacy fixture")
    registry.close()
    return {**inherited, "DRIFTLINE_SERVE_TAG": legacy_tag, "DRIFTLINE_HOME": str(state)}


@pytest.fixture
def serve(serve_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start ``bentoml serve ENTRY`` on a free loopback port; stop its process group after the test."""
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(entry: str) -> str:
        port = free_port()
        log_path = tmp_path / f"bentoml-{port}.log"
        log = log_path.open("wb")
        bentoml_cli = Path(sys.executable).parent / "bentoml"
        process = subprocess.Popen(
            [str(bentoml_cli), "serve", entry, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=serve_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append((process, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        raise AssertionError(f"bentoml serve {entry} was not ready in 120 s: {log_path.read_text()[-3000:]}")

    try:
        yield start
    finally:
        for process, log in started:
            stop_group(process)
            log.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    "entry",
    [
        "driftline.serving.service:ModelService",
        "driftline.service:ModelService",  # the entry Bentos built before the restructure name
    ],
)
def test_a_model_saved_before_the_restructure_serves_the_same_answers(entry: str, serve: Any, legacy_tag: str) -> None:
    url = serve(entry)
    response = httpx.post(f"{url}/predict", json={"rows": _records(_rows())}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == legacy_tag
    assert body["predictions"] == EXPECTED["predictions"]
    assert np.allclose(np.asarray(body["probabilities"])[:, 1], EXPECTED["probabilities"], rtol=0, atol=1e-6)
