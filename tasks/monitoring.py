"""Pick up new batches from a model's landing location, claim them once, and archive them."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import data
from driftline.data import Batch
from driftline.policy import PolicyDecision, decide
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="find-new-batches", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def find_new_batches(spec: ModelSpec) -> list[str]:
    """List the files waiting in the model's landing location, oldest name first."""
    return data.expand(spec.landing)


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
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(batch.path or "batch.parquet").name
    target = folder / f"{batch.fingerprint[:16]}-{name}"
    if batch.path is None:
        batch.frame.to_parquet(target, index=False)
    elif "://" in batch.path and not batch.path.startswith("file://"):
        data._move(batch.path, target)
    else:
        shutil.move(batch.path.removeprefix("file://"), target)
    return str(target)


@task(name="decide-retrain", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def decide_retrain(spec: ModelSpec, fingerprint: str, flow_run_id: str | None) -> PolicyDecision:
    """Apply the spec's drift policy (N of M, cooldown) to the newest batches and record the decision."""
    from datetime import UTC, datetime

    registry = open_registry()
    history = [bool(b.drift_detected) for b in registry.batches(spec.name, status="accepted", limit=spec.drift.of_last)]
    requests = registry.decisions(spec.name, limit=1, decision="retrain_requested")
    decision = decide(history, spec.drift, requests[0].at if requests else None, datetime.now(UTC))
    registry.record_decision(spec.name, decision.decision, decision.reason, fingerprint, flow_run_id)
    return decision
