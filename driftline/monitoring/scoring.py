"""Score a profile against a version's reference: noise floors kept beside the reference, a self-contained report.

The monitor's one drift step for batches and traffic windows alike; the statistics are in ``drift``.
"""

from __future__ import annotations

from dataclasses import replace
from logging import Logger, LoggerAdapter
from pathlib import Path
from typing import Any

from driftline.errors import StoreError
from driftline.loop import profiles
from driftline.monitoring import drift
from driftline.monitoring.drift import Calibration, DriftReport
from driftline.spec import ModelSpec


def calibration_path(reference_path: str) -> str:
    """Where a reference's noise floors are kept: beside it, ``<reference>.calibration.json``."""
    return f"{reference_path.removesuffix('.bin')}.calibration.json"


def reference_calibration(
    reference_path: str, reference: Any, spec: ModelSpec, logger: Logger | LoggerAdapter[Any]
) -> Calibration:
    """The reference's noise floors for this spec: read from beside it, or computed once and kept there."""
    import fsspec

    path = calibration_path(reference_path)
    columns = drift.monitored_columns(spec, with_prediction=drift.PREDICTION in reference.get_columns())
    try:
        with fsspec.open(path, "r", encoding="utf-8") as handle:
            stored = Calibration.from_json(handle.read())
        if stored.fits(spec, columns):
            return stored
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass  # absent (a reference made before calibration) or made for other columns: compute it again
    calibration = drift.calibrate(reference, spec, columns)
    try:
        with fsspec.open(path, "w", encoding="utf-8", auto_mkdir=True) as handle:
            handle.write(calibration.to_json())
    except OSError as error:  # a read-only store still scores; it only pays the calibration again next time
        logger.warning("%s: cannot keep the noise floors beside the reference: %s", path, error)
    return calibration


def score_profile(
    spec: ModelSpec,
    *,
    version: str,
    reference_path: str,
    profile_path: str,
    key: str,
    report_dir: Path,
    report_name: str | None,
    prediction_reference: str | None,
    labeled: bool,
    logger: Logger | LoggerAdapter[Any],
) -> DriftReport:
    """Score drift per column against noise floors calibrated to the batch's size; write a self-contained report.

    ``key`` is the batch's fingerprint or the traffic window's key; the report is
    ``<report_dir>/<model>/<report_name>-drift.html`` (default: the key's first 16 characters).
    ``prediction_reference`` is the profile of the version's predictions on its holdout, scored against the
    profile's ``prediction`` column; ``labeled=False`` (served traffic) leaves the target out.
    """
    reference, target = profiles.read_profile(reference_path), profiles.read_profile(profile_path)
    if prediction_reference is not None:
        try:
            reference = reference.merge(profiles.read_profile(prediction_reference))
        except StoreError as error:
            logger.warning("%s: prediction drift not scored: %s", spec.name, error)
    calibration = reference_calibration(prediction_reference or reference_path, reference, spec, logger)
    report = drift.score(
        target,
        reference,
        spec,
        version=version,
        batch=key,
        reference=reference_path,
        calibration=calibration,
        labeled=labeled,
    )
    folder = report_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report_name or key[:16]}-drift.html"
    path.write_text(drift.render_html(report, target, reference), encoding="utf-8")
    return replace(report, report_path=str(path))
