"""Score a batch's profile against the champion's reference profile and write the drift report."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import drift, profiles
from driftline.drift import DriftReport
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="score-drift", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def score_drift(
    spec: ModelSpec, version: str, reference_path: str, profile_path: str, batch: str, report_name: str | None = None
) -> DriftReport:
    """Score drift per column (Hellinger distance vs thresholds) and write a self-contained HTML report.

    ``batch`` is the batch's fingerprint or the traffic window's key; the report is ``<report_name>-drift.html``
    (default: the fingerprint's first 16 characters).
    """
    reference, target = profiles.read_profile(reference_path), profiles.read_profile(profile_path)
    report = drift.score(target, reference, spec, version=version, batch=batch, reference=reference_path)
    folder = get_settings().state_dir / "reports" / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report_name or batch[:16]}-drift.html"
    path.write_text(drift.render_html(report, target, reference), encoding="utf-8")
    return DriftReport(**{**report.__dict__, "report_path": str(path)})
