"""Score a batch's profile against the champion's reference profile and write the drift report."""

from __future__ import annotations

from driftline.monitoring import scoring
from driftline.monitoring.drift import DriftReport
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import MODEL_STORE, run_logger, step


@step("score-drift", MODEL_STORE)
def score_drift(
    spec: ModelSpec,
    *,
    version: str,
    reference: str,
    profile: str,
    key: str,
    report_name: str | None = None,
    prediction_reference: str | None = None,
    labeled: bool = True,
) -> DriftReport:
    """Score drift per column against noise floors calibrated to the batch's size; write a self-contained report.

    ``reference`` and ``profile`` are profile paths; ``key`` is the batch's fingerprint or the traffic window's
    key; the report is ``<report_name>-drift.html`` (default: the key's first 16 characters).
    ``prediction_reference`` is the profile of the version's predictions on its holdout, scored against the
    batch's ``prediction`` column; ``labeled=False`` (served traffic) leaves the target out.
    """
    return scoring.score_profile(
        spec,
        version=version,
        reference_path=reference,
        profile_path=profile,
        key=key,
        report_dir=get_settings().state_dir / "reports",
        report_name=report_name,
        prediction_reference=prediction_reference,
        labeled=labeled,
        logger=run_logger(),
    )
