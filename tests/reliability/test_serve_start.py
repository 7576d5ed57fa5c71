"""A model that cannot load: `driftline serve` exits non-zero with the reason within seconds, and frees its port."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from driftline.loop import store
from driftline.runtime.server import free_port
from tests.conftest import Project, Trained, save_version, serve_command

pytestmark = pytest.mark.integration

# bentoml serve itself takes ~5-10 s to start here; the failure must end it within seconds of that, not crash-loop.
LIMIT_S = 45.0


def _serve(project: Project, version: str) -> tuple[int, str, float, int]:
    port = free_port()
    start = time.monotonic()
    try:
        result = subprocess.run(
            serve_command("fraud", version, port),
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as expired:  # the old behaviour: workers crash-looping, the port held
        raise AssertionError(f"driftline serve still running after {LIMIT_S:g} s: {expired.stdout!r}") from None
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start, port


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_corrupt_model_stops_the_service_with_the_reason(project: Project, trained_fraud: Trained) -> None:
    tag = save_version(trained_fraud)
    saved = Path(store.bentoml_home()) / "models" / "fraud" / tag.split(":")[1] / "saved_model.pkl"
    assert saved.is_file()
    saved.write_bytes(b"\x80\x04this is not a pickle" * 10)

    code, output, took, port = _serve(project, tag.split(":")[1])
    assert code != 0
    assert f"error: {tag}: the service cannot start:" in output, output[-3000:]
    assert f"cannot load model {tag}" in output or "digest" in output.lower(), output[-3000:]
    assert _port_free(port)
    assert took < LIMIT_S


def test_a_model_missing_from_the_store_stops_the_service_with_the_reason(
    project: Project, trained_fraud: Trained
) -> None:
    from driftline.registry import open_registry

    tag = save_version(trained_fraud)
    version = tag.split(":")[1]
    store_folder = Path(store.bentoml_home()) / "models" / "fraud" / version
    for path in sorted(store_folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    store_folder.rmdir()
    assert open_registry().version("fraud", version).tag == tag  # the registry still names it

    code, output, _, port = _serve(project, version)
    assert code != 0
    assert f"error: {tag}: the service cannot start:" in output, output[-3000:]
    assert "not found" in output.lower(), output[-3000:]
    assert _port_free(port)


def test_the_servability_check_of_a_model_that_cannot_load_says_why(
    project: Project, trained_fraud: Trained, tmp_path: Path
) -> None:
    from driftline.serving import servability

    tag = save_version(trained_fraud)
    saved = Path(store.bentoml_home()) / "models" / "fraud" / tag.split(":")[1] / "saved_model.pkl"
    saved.write_bytes(b"\x80\x04this is not a pickle" * 10)
    start = time.monotonic()
    report = servability.check(
        tag, trained_fraud.fitted.model, trained_fraud.split.holdout, trained_fraud.spec, tmp_path
    )
    assert not report.ok
    assert report.reason.startswith("the service cannot start: ") and tag in report.reason, report.reason
    assert time.monotonic() - start < LIMIT_S


PHANTOM = '''
from sklearn.base import BaseEstimator


class Phantom(BaseEstimator):
    """An estimator whose module exists where it was trained and not where it is served."""

    def predict(self, frame):
        return [0] * len(frame)
'''


def test_a_model_that_cannot_be_unpickled_ends_a_plain_bentoml_serve_too(
    project: Project, trained_fraud: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files as packaged (digests match) but a library missing where it runs: no supervisor, still no crash-loop."""
    import dataclasses
    import importlib
    import os

    from driftline.runtime.processes import bentoml_command
    from driftline.serving.config import SERVICE, ServeConfig, files_of

    (tmp_path / "phantom_estimator.py").write_text(PHANTOM)
    monkeypatch.syspath_prepend(str(tmp_path))
    phantom = importlib.import_module("phantom_estimator").Phantom()
    tag = save_version(
        dataclasses.replace(trained_fraud, fitted=dataclasses.replace(trained_fraud.fitted, model=phantom))
    )

    port = free_port()
    env = {**os.environ, **ServeConfig(tag=tag, files=files_of(tag)).to_env()}
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    try:
        result = subprocess.run(
            [bentoml_command(), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"bentoml serve still running after {LIMIT_S:g} s (workers crash-looping)") from None
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"the service cannot start: cannot load model {tag}: ModuleNotFoundError" in output, output[-3000:]
    assert "phantom_estimator" in output
    assert _port_free(port)
    assert time.monotonic() - start < LIMIT_S

    code, output, _, port = _serve(project, tag.split(":")[1])  # and through driftline serve
    assert code != 0 and f"error: {tag}: the service cannot start: cannot load model {tag}" in output, output[-3000:]
    assert _port_free(port)
