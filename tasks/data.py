"""Load batches, and quarantine the ones that fail validation."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import alerts, data, events
from driftline.data import Batch
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from driftline.validation import ValidationReport


@task(name="load-batches", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def load_batches(spec: ModelSpec, location: str | None = None) -> list[Batch]:
    """Load every batch of the model's source, fingerprinted; ``location`` replaces a file source for one run."""
    return data.load_source(spec, location)


@task(name="combine-batches", cache_policy=NO_CACHE)
def combine_batches(batches: list[Batch]) -> Batch:
    """Concatenate validated batches into the training batch."""
    return data.combine(batches)


@task(name="quarantine-batch", cache_policy=NO_CACHE)
def quarantine_batch(batch: Batch, report: ValidationReport, spec: ModelSpec) -> Path:
    """Move a failed batch to quarantine byte-identical, with its validation result beside it."""
    return data.quarantine(batch, spec.name, get_settings().quarantine_dir, {"validation": report.as_dict()})


def reject_batch(batch: Batch, report: ValidationReport, spec: ModelSpec) -> tuple[Path, str]:
    """Quarantine a failed batch and emit ``driftline.validation.failed``; return where it is and what broke."""
    kept = quarantine_batch(batch, report, spec)
    failures = [outcome.describe() for outcome in report.failures]
    champion = open_registry().champion(spec.name)
    events.emit(
        events.VALIDATION_FAILED,
        spec.name,
        {
            "batch": batch.origin,
            "fingerprint": batch.fingerprint,
            "quarantined": str(kept),
            "suite": report.suite,
            "failures": failures,
        },
        alerts.validation_failed(
            spec.name,
            champion.version if champion else None,
            batch.origin,
            str(kept),
            failures,
            events.current_run_url(),
        ),
    )
    return kept, f"{report.summary()}\n  quarantined to {kept}"
