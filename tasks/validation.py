"""Validate batches with Great Expectations against the model's suite."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline.loop import validation
from driftline.loop.data import Batch
from driftline.loop.validation import ValidationReport
from driftline.spec import ModelSpec


@task(name="validate-batch", cache_policy=NO_CACHE)
def validate_batch(batch: Batch, spec: ModelSpec) -> ValidationReport:
    """Run the model's expectation suite on a batch; a failing batch is a result, not an exception."""
    return validation.validate(batch, spec)
