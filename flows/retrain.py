"""The retrain loop: one run per model at a time, on history plus the recent window, judged by the gate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline.loop.gate import Outcome
from driftline.monitoring import policy
from driftline.monitoring.policy import Decision
from driftline.registry import BatchStatus, open_registry
from driftline.settings import quiet_telemetry
from driftline.spec import load_spec
from flows.train import TrainOutcome, train


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


def retrain_decision(outcome: TrainOutcome) -> Decision:
    """The decision a retrain records for its training run's outcome."""
    if outcome.promoted:
        return Decision.RETRAIN_PROMOTED
    if outcome.outcome == Outcome.UNCHANGED:
        return Decision.RETRAIN_UNCHANGED
    if outcome.outcome == Outcome.NOT_BETTER:
        return Decision.RETRAIN_NOT_BETTER
    return Decision.RETRAIN_REJECTED


@flow(name="retrain", flow_run_name="retrain-{model}")
def retrain(model: str, fingerprint: str = "", reason: str = "scheduled") -> RetrainOutcome:
    """Retrain a model on its source plus the recent window; skip (and say why) if one is running or cooling down.

    Started nightly (``reason="scheduled"``) or by a ``driftline.drift.detected`` event (``reason="drift"``,
    ``fingerprint`` of the drifted batch).
    """
    quiet_telemetry()
    logger = get_run_logger()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else f"local-{uuid.uuid4()}"
    spec = load_spec(model)
    registry = open_registry()
    lease_name = f"retrain:{spec.name}"

    def skip(decision: Decision, why: str) -> RetrainOutcome:
        registry.record_decision(spec.name, decision, why, fingerprint or None, run_id)
        logger.info("%s: retrain skipped (%s): %s", spec.name, decision, why)
        return RetrainOutcome(spec.name, decision, why)

    lease = registry.acquire(lease_name, run_id, ttl_s=spec.retrain.lease_minutes * 60)
    if lease is None:
        holder = registry.lease(lease_name)
        since = f" since {holder.acquired_at:%H:%M:%S} UTC" if holder else ""
        return skip(policy.SKIPPED_DUPLICATE, f"retrain run {holder.holder if holder else '?'} is running{since}")
    try:
        started = registry.decisions(spec.name, limit=1, decision=Decision.RETRAIN_STARTED)
        cooldown = timedelta(minutes=spec.drift.cooldown_minutes)
        if reason == "drift" and started and datetime.now(UTC) - started[0].at < cooldown:
            return skip(
                policy.SKIPPED_COOLDOWN,
                f"a retrain started at {started[0].at:%H:%M:%S} UTC; drift.cooldown_minutes is "
                f"{spec.drift.cooldown_minutes:g}",
            )
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
            run_id,
        )
        outcome = train(model=spec.name, reason=reason, window=window, drift_event=drift_event)
        verdict = retrain_decision(outcome)
        registry.record_decision(spec.name, verdict, outcome.decision.reason, fingerprint or None, run_id)
        return RetrainOutcome(spec.name, verdict, outcome.decision.reason, outcome, outcome.outcome)
    finally:
        registry.release(lease_name, run_id)
