"""Validate batches with Great Expectations against the model's suite."""

from __future__ import annotations

from driftline.loop import validation
from driftline.loop.data import Batch
from driftline.loop.validation import Validated, ValidationReport
from driftline.spec import ModelSpec
from tasks.options import VALIDATION, step


@step("validate-batch", cache=VALIDATION)
def validate_batch(spec: ModelSpec, *, batch: Batch) -> ValidationReport:
    """Run the model's expectation suite on a batch; a failing batch is a result, not an exception."""
    return validation.validate(batch, spec)


@step("validate-batches")
def validate_batches(spec: ModelSpec, *, history: list[Batch], recent: list[Batch]) -> Validated:
    """Run the model's suite on a training run's source batches and recent-window batches."""
    return validation.validate_all(history, recent, spec)
