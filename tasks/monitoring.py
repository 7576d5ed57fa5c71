"""Pick up new batches from a model's landing location and closed live-traffic windows; claim each once."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import data, traffic
from driftline.data import Batch
from driftline.policy import PolicyDecision, decide
from driftline.profiles import ProfileRecord
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from driftline.traffic import TrafficWindow


@task(name="find-new-batches", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def find_new_batches(spec: ModelSpec) -> list[str]:
    """List the files waiting in the model's landing location, oldest name first."""
    return data.expand(spec.landing)


@task(name="find-traffic-windows", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def find_traffic_windows(spec: ModelSpec) -> list[TrafficWindow]:
    """List the closed live-traffic windows in the profile store that no monitor run has claimed, oldest first."""
    from datetime import UTC, datetime

    length = spec.serving.window_minutes * 60
    # Every process writes its part within a second of the window's end; the grace period covers slow stores.
    windows = traffic.closed_windows(
        get_settings().profiles, spec.name, datetime.now(UTC), length, grace_seconds=min(60.0, length)
    )
    seen = {b.fingerprint for b in open_registry().batches(spec.name, status="window")}
    return [w for w in windows if w.key not in seen]


@task(name="claim-window", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def claim_window(spec: ModelSpec, window: TrafficWindow) -> bool:
    """Claim a traffic window by its key; False if another monitor run has it."""
    return open_registry().claim_batch(spec.name, window.key, window.parts[0].rsplit("/", 1)[0])


@task(name="merge-window", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def merge_window(window: TrafficWindow) -> ProfileRecord:
    """Merge a window's per-process profiles into the window's profile in the store."""
    return traffic.merge_window(window, get_settings().profiles)


@task(name="claim-batch", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def claim_batch(spec: ModelSpec, batch: Batch) -> bool:
    """Claim a batch by its fingerprint; False if this content was processed (or is being processed) already."""
    return open_registry().claim_batch(spec.name, batch.fingerprint, batch.origin)


def _archive_dir(spec: ModelSpec) -> Path:
    return get_settings().state_dir / "batches" / spec.name


@task(name="archive-batch", cache_policy=NO_CACHE)
def archive_batch(spec: ModelSpec, batch: Batch, duplicate: bool = False) -> str:
    """Move a processed batch out of the landing area, byte-identical, into the state directory's history."""
    folder = _archive_dir(spec) / ("duplicates" if duplicate else "")
    name = Path(batch.path or "batch.parquet").name
    # A redelivered file of the same name and content gets a name of its own: an earlier copy is never replaced.
    if batch.path is None:
        target = data.new_file(folder, f"{batch.fingerprint[:16]}-{name}")
        batch.frame.to_parquet(target, index=False)
        return str(target)
    return str(data.move_new(batch.path, folder, f"{batch.fingerprint[:16]}-{name}"))


@task(name="decide-retrain", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def decide_retrain(spec: ModelSpec, fingerprint: str, flow_run_id: str | None) -> PolicyDecision:
    """Apply the spec's drift policy (N of M, cooldown) to the newest batches and windows; record the decision."""
    from datetime import UTC, datetime

    registry = open_registry()
    scored = registry.batches(spec.name, status=("accepted", "window"), limit=spec.drift.of_last)
    history = [bool(b.drift_detected) for b in scored]
    requests = registry.decisions(spec.name, limit=1, decision="retrain_requested")
    decision = decide(history, spec.drift, requests[0].at if requests else None, datetime.now(UTC))
    registry.record_decision(spec.name, decision.decision, decision.reason, fingerprint, flow_run_id)
    return decision
