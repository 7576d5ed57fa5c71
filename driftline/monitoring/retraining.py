"""The retrain loop's bookkeeping: one run per model at a time (a lease), the cooldown, and the decisions it records.

The retrain flow trains with the train flow; everything it decides around that is here, recorded in the registry
as monitor decisions (``retrain_started``, then ``retrain_promoted`` / ``_unchanged`` / ``_not_better`` /
``_rejected``, or a skip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.loop.gate import Outcome
from driftline.loop.statuses import BatchStatus, Decision
from driftline.loop.training import TrainOutcome
from driftline.monitoring import policy
from driftline.monitoring.policy import PolicyDecision
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    from driftline.registry import Registry


@dataclass(frozen=True)
class RetrainOutcome:
    """Whether a retrain ran, why not if it did not, and the train outcome if it did.

    ``decision`` is what the registry records: ``retrain_promoted``; ``retrain_unchanged`` (same data, spec and
    code as the champion: nothing trained) and ``retrain_not_better`` (informational); ``retrain_rejected`` for
    the outcomes that page (regressed, incomparable, unservable); or a skip. ``outcome`` is the gate's outcome.
    """

    model: str
    decision: Decision
    reason: str
    trained: TrainOutcome | None = None
    outcome: Outcome | None = None


@dataclass(frozen=True)
class RetrainStart:
    """A retrain that may start (``skipped`` is None): the recent window to add and the drift that started it."""

    skipped: PolicyDecision | None = None
    window: list[str] = field(default_factory=list)
    drift_event: dict[str, Any] | None = None


def retrain_decision(outcome: TrainOutcome) -> Decision:
    """The decision a retrain records for its training run's outcome."""
    if outcome.promoted:
        return Decision.RETRAIN_PROMOTED
    if outcome.outcome == Outcome.UNCHANGED:
        return Decision.RETRAIN_UNCHANGED
    if outcome.outcome == Outcome.NOT_BETTER:
        return Decision.RETRAIN_NOT_BETTER
    return Decision.RETRAIN_REJECTED


def lease_name(spec: ModelSpec) -> str:
    return f"retrain:{spec.name}"


def take_lease(registry: Registry, spec: ModelSpec, holder: str) -> PolicyDecision | None:
    """Take the model's retrain lease for ``holder``; the ``skipped_duplicate`` decision if another run holds it."""
    if registry.acquire(lease_name(spec), holder, ttl_s=spec.retrain.lease_minutes * 60) is not None:
        return None
    running = registry.lease(lease_name(spec))
    since = f" since {running.acquired_at:%H:%M:%S} UTC" if running else ""
    return PolicyDecision(
        policy.SKIPPED_DUPLICATE, f"retrain run {running.holder if running else '?'} is running{since}"
    )


def release_lease(registry: Registry, spec: ModelSpec, holder: str) -> None:
    registry.release(lease_name(spec), holder)


def start(
    registry: Registry, spec: ModelSpec, fingerprint: str, reason: str, flow_run_id: str, now: datetime
) -> RetrainStart:
    """Decide whether a retrain starts (a drift-started one waits out the cooldown); if it does, record
    ``retrain_started`` with the recent window it trains on and the drifted batch that started it."""
    started = registry.decisions(spec.name, limit=1, decision=Decision.RETRAIN_STARTED)
    if reason == "drift":
        cooling = policy.retrain_cooldown(spec.drift, started[0].at if started else None, now)
        if cooling is not None:
            return RetrainStart(skipped=cooling)
    window = [
        b.stored_path
        for b in registry.batches(spec.name, status=BatchStatus.ACCEPTED, limit=spec.retrain.window_batches)
        if b.stored_path
    ]
    drift_event = None
    if fingerprint:
        record = registry.batch(spec.name, fingerprint)
        drift_event = {
            "fingerprint": fingerprint,
            "batch": record.stored_path if record else None,
            "drifted": [c.column for c in record.drift.drifted] if record and record.drift else [],
            "report": record.report_path if record else None,
        }
    registry.record_decision(
        spec.name,
        Decision.RETRAIN_STARTED,
        f"{reason}: training on the source plus {len(window)} recent batches",
        fingerprint or None,
        flow_run_id,
    )
    return RetrainStart(window=window, drift_event=drift_event)


def record_skip(
    registry: Registry, spec: ModelSpec, skipped: PolicyDecision, fingerprint: str, flow_run_id: str
) -> RetrainOutcome:
    """Record why a retrain did not run."""
    registry.record_decision(spec.name, skipped.decision, skipped.reason, fingerprint or None, flow_run_id)
    return RetrainOutcome(spec.name, skipped.decision, skipped.reason)


def record_outcome(
    registry: Registry, spec: ModelSpec, trained: TrainOutcome, fingerprint: str, flow_run_id: str
) -> RetrainOutcome:
    """Record what the retrain's training run decided."""
    verdict = retrain_decision(trained)
    registry.record_decision(spec.name, verdict, trained.decision.reason, fingerprint or None, flow_run_id)
    return RetrainOutcome(spec.name, verdict, trained.decision.reason, trained, trained.outcome)
