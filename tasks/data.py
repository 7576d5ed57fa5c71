"""Load batches, check them against the spec, and quarantine the ones that fail validation."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline.loop import data
from driftline.loop.data import Batch, SourceKind
from driftline.loop.validation import ValidationReport
from driftline.oncall import alerts, events
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="load-batches", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def load_batches(spec: ModelSpec, location: str | None = None) -> list[Batch]:
    """Load every batch of the model's source, fingerprinted; ``location`` replaces a file source for one run."""
    return data.load_source(spec, location)


@task(name="check-columns", cache_policy=NO_CACHE)
def check_columns(spec: ModelSpec, batches: list[Batch]) -> None:
    """Fail with a spec error if a declared column or the target is in none of the batches (nothing is quarantined)."""
    data.check_columns(spec, batches)


@task(name="combine-batches", cache_policy=NO_CACHE)
def combine_batches(batches: list[Batch]) -> Batch:
    """Concatenate validated batches into the training batch."""
    return data.combine(batches)


@task(name="quarantine-batch", cache_policy=NO_CACHE)
def quarantine_batch(batch: Batch, report: ValidationReport, spec: ModelSpec, where: SourceKind = "source") -> Path:
    """Keep a failed batch byte-identical in quarantine with its validation result beside it.

    A source file is copied and left in place; a landing file is moved.
    """
    evidence = {"validation": report.as_dict()}
    return data.quarantine(batch, spec.name, get_settings().quarantine_dir, evidence, where=where)


class Rejected(NamedTuple):
    """Where a rejected batch is kept, and the message that says so (for the run's failure)."""

    kept: Path
    message: str


def reject_batch(batch: Batch, report: ValidationReport, spec: ModelSpec, where: SourceKind = "source") -> Rejected:
    """Quarantine a failed batch and emit ``driftline.validation.failed``; return where it is kept and what broke.

    ``where`` says whose file it is: ``"source"`` (a file the spec's source names: copied, left in place) or
    ``"landing"`` (a file in the monitor's landing area: moved out of it).
    """
    kept = quarantine_batch(batch, report, spec, where)
    failures = [outcome.describe() for outcome in report.failures]
    champion = open_registry().champion(spec.name)
    left_in_place = batch.path is not None and where == "source"
    events.emit(
        events.VALIDATION_FAILED,
        spec.name,
        {
            "batch": batch.origin,
            "fingerprint": batch.fingerprint,
            "quarantined": str(kept),
            "source_kind": where,
            "left_in_place": left_in_place,
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
    return Rejected(kept, f"{report.summary()}\n  {kept_message(batch, kept, where, spec.name)}")


def kept_message(batch: Batch, kept: Path, where: SourceKind, model: str) -> str:
    """Say where a rejected batch is and what became of the original, with what to do next."""
    if batch.path is None:
        return f"its rows are kept at {kept}; {batch.origin} is not driftline's to change: fix it there"
    if where == "landing":
        return (
            f"moved out of the landing area to {kept} (byte-identical); once the data or the suite is fixed, "
            f"`driftline replay {model} {kept.parent.name}` returns it to {batch.path}"
        )
    return (
        f"copied byte-identical to {kept}; {batch.path} is left in place (a spec's source is never moved): "
        "fix or remove it, or fix the suite, then run again"
    )
