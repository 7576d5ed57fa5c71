"""A stored model replaced by a pickle that runs code when loaded is refused by serve, evaluate, the gate and the
monitor, before anything is unpickled: the code's marker file never appears.

The tampered ``saved_model.pkl`` is a pickle whose ``__reduce__`` writes a marker file. The control test unpickles
the same bytes on purpose and sees the marker appear, so an absent marker elsewhere means the code never ran.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.errors import ModelIntegrityError
from driftline.examples.fraud import generate
from driftline.loop import store
from driftline.registry import Champion, open_registry
from driftline.runtime.server import free_port
from tasks.evaluation import evaluate_champion, score_holdout
from tasks.monitoring import load_model
from tests.conftest import Project, Trained, mark_checked, save_version, serve_command

SERVE_LIMIT_S = 60.0


class _WritesMarker:
    """Unpickling this calls ``Path.write_text(marker, "ran")``: code run by the load itself."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "ran"))


def _tamper(tag: str, marker: Path) -> Path:
    """Replace the version's saved_model.pkl with the marker-writing pickle; return the file."""
    saved = store.folder(tag) / "saved_model.pkl"
    assert saved.is_file()
    saved.write_bytes(pickle.dumps(_WritesMarker(marker)))
    return saved


@pytest.fixture
def tampered(project: Project, trained_fraud: Trained, tmp_path: Path) -> tuple[str, Path]:
    """A registered, checked champion whose stored pickle was then replaced; (its tag, the marker path)."""
    tag = save_version(trained_fraud)
    version = tag.split(":", 1)[1]
    registry = open_registry()
    mark_checked(registry, "fraud", version)
    registry.promote("fraud", version, None, actor="test", reason="first", evidence={})
    marker = tmp_path / "tampered-code-ran"
    _tamper(tag, marker)
    return tag, marker


def test_control_the_tampered_pickle_runs_its_code_when_unpickled(tampered: tuple[str, Path]) -> None:
    tag, marker = tampered
    pickle.loads((store.folder(tag) / "saved_model.pkl").read_bytes())
    assert marker.read_text() == "ran"


def test_store_load_refuses_and_names_the_file(tampered: tuple[str, Path]) -> None:
    tag, marker = tampered
    files = open_registry().version("fraud", tag.split(":")[1]).lineage.model_files
    with pytest.raises(ModelIntegrityError, match=r"saved_model\.pkl changed") as refused:
        store.load(tag, files)
    assert f"fraud version {tag.split(':')[1]}" in str(refused.value)
    assert not marker.exists()


def test_evaluate_refuses_the_tampered_version(tampered: tuple[str, Path], tmp_path: Path) -> None:
    tag, marker = tampered
    data = tmp_path / "labeled.parquet"
    generate(300, seed=5).to_parquet(data)
    result = CliRunner().invoke(app, ["evaluate", tag, "--data", str(data)])
    assert result.exit_code == 1, result.output
    assert "saved_model.pkl changed" in result.output and "digests recorded" in result.output
    assert not marker.exists()


def test_the_gate_refuses_to_score_a_tampered_champion(tampered: tuple[str, Path], trained_fraud: Trained) -> None:
    tag, marker = tampered
    champion = open_registry().champion("fraud")
    assert isinstance(champion, Champion) and champion.version == tag.split(":")[1]
    spec, split = trained_fraud.spec, trained_fraud.split
    # Refused, not passed off as "the champion could not be scored" (which would let the challenger in).
    with pytest.raises(ModelIntegrityError, match=r"saved_model\.pkl changed"):
        score_holdout.fn(spec, model=trained_fraud.fitted.model, champion=champion, split=split)
    with pytest.raises(ModelIntegrityError, match=r"saved_model\.pkl changed"):
        evaluate_champion.fn(spec, champion=champion, split=split)
    assert not marker.exists()


def test_the_monitor_refuses_to_load_a_tampered_champion(tampered: tuple[str, Path], trained_fraud: Trained) -> None:
    tag, marker = tampered
    with pytest.raises(ModelIntegrityError, match=r"saved_model\.pkl changed"):
        load_model.fn(trained_fraud.spec, version=tag.split(":")[1])
    assert not marker.exists()


def test_a_missing_or_extra_file_is_refused_too(project: Project, trained_fraud: Trained) -> None:
    tag = save_version(trained_fraud)
    files = open_registry().version("fraud", tag.split(":")[1]).lineage.model_files
    extra = store.folder(tag) / "sitecustomize.py"
    extra.write_text("print('hi')\n")
    with pytest.raises(ModelIntegrityError, match=r"sitecustomize\.py extra"):
        store.load(tag, files)
    extra.unlink()
    (store.folder(tag) / "custom_objects.pkl").unlink()
    with pytest.raises(ModelIntegrityError, match=r"custom_objects\.pkl missing"):
        store.load(tag, files)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.integration
def test_driftline_serve_refuses_the_tampered_version(tampered: tuple[str, Path], project: Project) -> None:
    tag, marker = tampered
    port = free_port()
    process = subprocess.Popen(
        serve_command("fraud", tag.split(":")[1], port),
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=SERVE_LIMIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode != 0, output[-3000:]
    assert "saved_model.pkl changed" in output and "ModelIntegrityError" in output, output[-3000:]
    assert not marker.exists()
    deadline = time.monotonic() + 10
    while not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _port_free(port)


def test_driftline_verify_lists_the_files_that_differ(tampered: tuple[str, Path], project: Project) -> None:
    tag, marker = tampered
    version = tag.split(":")[1]
    result = CliRunner().invoke(app, ["verify", "fraud", "--version", version])
    assert result.exit_code == 1
    assert "1 file(s) differ" in result.output and "saved_model.pkl changed" in result.output
    assert not marker.exists()


def test_driftline_verify_passes_an_untouched_version(project: Project, trained_fraud: Trained) -> None:
    tag = save_version(trained_fraud)
    result = CliRunner().invoke(app, ["verify", "fraud", "--version", tag.split(":")[1]])
    assert result.exit_code == 0, result.output
    assert "files match the digests" in result.output
