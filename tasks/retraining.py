"""One retrain per model at a time, the cooldown, and the decisions a retrain records."""

from __future__ import annotations

from datetime import UTC, datetime

from driftline.loop.training import TrainOutcome
from driftline.monitoring import retraining
from driftline.monitoring.policy import PolicyDecision
from driftline.monitoring.retraining import RetrainOutcome, RetrainStart
from driftline.registry import holder_for, open_registry
from driftline.spec import ModelSpec
from tasks.options import REGISTRY, step


# No retries on writes that append or take a lease: a retried success would be recorded twice.
@step("take-retrain-lease")
def take_retrain_lease(spec: ModelSpec, *, holder: str) -> PolicyDecision | None:
    """Take the model's retrain lease for run ``holder`` in this process; ``skipped_duplicate`` if another live run
    holds it. Held as ``host:pid:run``: a lease whose process died on this host is taken over, not waited out."""
    return retraining.take_lease(open_registry(), spec, holder_for(holder))


@step("release-retrain-lease", REGISTRY)
def release_retrain_lease(spec: ModelSpec, *, holder: str) -> None:
    """Give the model's retrain lease back."""
    retraining.release_lease(open_registry(), spec, holder_for(holder))


@step("start-retrain")
def start_retrain(spec: ModelSpec, *, fingerprint: str, reason: str, flow_run_id: str) -> RetrainStart:
    """Skip a drift-started retrain in its cooldown; else record ``retrain_started`` with the window to train on."""
    return retraining.start(open_registry(), spec, fingerprint, reason, flow_run_id, datetime.now(UTC))


@step("record-retrain-skip")
def record_retrain_skip(
    spec: ModelSpec, *, skipped: PolicyDecision, fingerprint: str, flow_run_id: str
) -> RetrainOutcome:
    """Record why a retrain did not run."""
    return retraining.record_skip(open_registry(), spec, skipped, fingerprint, flow_run_id)


@step("record-retrain")
def record_retrain(spec: ModelSpec, *, trained: TrainOutcome, fingerprint: str, flow_run_id: str) -> RetrainOutcome:
    """Record what the retrain's training run decided."""
    return retraining.record_outcome(open_registry(), spec, trained, fingerprint, flow_run_id)
