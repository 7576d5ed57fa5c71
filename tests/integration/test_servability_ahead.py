"""The servability check's service started ahead: it waits for its version, then answers like the model in process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from driftline.serving import servability
from tests.conftest import Project, Trained, save_version

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_service_started_before_the_version_exists_checks_it_once_handed_over(
    project: Project, trained_fraud: Trained, tmp_path: Path
) -> None:
    service = servability.start(tmp_path, owner="run-1")
    tag = save_version(trained_fraud)  # packaged after the service started, as in a train

    report = servability.check(
        tag, trained_fraud.fitted.model, trained_fraud.split.holdout, trained_fraud.spec, tmp_path, service
    )

    assert report.ok, report.reason
    assert report.rows == min(len(trained_fraud.split.holdout), trained_fraud.spec.serving.check_rows)
    assert not _alive(service.pid)  # the check stops what it used


def test_a_service_no_check_used_is_stopped_with_its_run_only(project: Project, tmp_path: Path) -> None:
    mine, other = servability.start(tmp_path, owner="run-1"), servability.start(tmp_path, owner="run-2")
    try:
        servability.stop_all(owner="run-1")

        assert not _alive(mine.pid)
        time.sleep(0.5)
        assert _alive(other.pid)
    finally:
        servability.stop(other)
    assert not _alive(other.pid)
