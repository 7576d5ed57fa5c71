"""Load batches, check them against the spec, and quarantine the ones that fail validation."""

from __future__ import annotations

from pathlib import Path

from driftline.loop import data, quarantine
from driftline.loop.data import Batch, SourceKind
from driftline.loop.quarantine import Rejected
from driftline.loop.validation import ValidationReport
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import FILES, run_logger, step


@step("load-batches", FILES)
def load_batches(spec: ModelSpec, *, location: str | None = None) -> list[Batch]:
    """Load every batch of the model's source, fingerprinted; ``location`` replaces a file source for one run."""
    return data.load_source(spec, location, run_logger().warning)


@step("check-columns")
def check_columns(spec: ModelSpec, *, batches: list[Batch]) -> None:
    """Fail with a spec error if a declared column or the target is in none of the batches (nothing is quarantined)."""
    data.check_columns(spec, batches)


@step("combine-batches")
def combine_batches(spec: ModelSpec, *, batches: list[Batch]) -> Batch:
    """Concatenate a run's validated batches into the training batch."""
    return data.combine(batches)


@step("quarantine-batch")
def quarantine_batch(spec: ModelSpec, *, batch: Batch, report: ValidationReport, where: SourceKind = "source") -> Path:
    """Keep a failed batch byte-identical in quarantine with its validation result beside it.

    A source file is copied and left in place; a landing file is moved.
    """
    return data.quarantine(
        batch, spec.name, get_settings().quarantine_dir, {"validation": report.as_dict()}, where=where
    )


@step("reject-batch")
def reject_batch(spec: ModelSpec, *, batch: Batch, report: ValidationReport, where: SourceKind = "source") -> Rejected:
    """Quarantine a failed batch; say where it is kept and what broke (for the run's failure and on-call).

    ``where`` says whose file it is: ``"source"`` (a file the spec's source names: copied, left in place) or
    ``"landing"`` (a file in the monitor's landing area: moved out of it).
    """
    return quarantine.reject(batch, report, spec, get_settings().quarantine_dir, where)
