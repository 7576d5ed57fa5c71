"""Tell on-call: driftline's events, each with its alert (subject, body, what to do), emitted from a flow.

Plain functions, like the artifacts: an event relates to the flow run that emits it. Payloads carry references
(versions, paths, fingerprints), never data.
"""

from __future__ import annotations

from typing import Any

from driftline.loop.gate import GateDecision
from driftline.loop.quarantine import Rejected
from driftline.loop.training import Packaged
from driftline.monitoring import batches
from driftline.monitoring.batches import BatchOutcome, Scored
from driftline.monitoring.drift import DriftReport
from driftline.monitoring.policy import PolicyDecision
from driftline.oncall import alerts, events
from driftline.registry import Champion, LedgerEntry
from driftline.spec import ModelSpec


def notify_validation_failed(spec: ModelSpec, rejected: Rejected, champion: Champion | None) -> None:
    """Emit ``driftline.validation.failed``: which batch, where it is kept, what broke."""
    events.emit(
        events.VALIDATION_FAILED,
        spec.name,
        {
            "batch": rejected.origin,
            "fingerprint": rejected.fingerprint,
            "quarantined": str(rejected.kept),
            "source_kind": rejected.where,
            "left_in_place": rejected.left_in_place,
            "suite": rejected.suite,
            "failures": rejected.failures,
        },
        alerts.validation_failed(
            spec.name,
            champion.version if champion else None,
            rejected.origin,
            str(rejected.kept),
            rejected.failures,
            events.current_run_url(),
        ),
    )


def notify_model_rejected(
    spec: ModelSpec, decision: GateDecision, champion: Champion | None, packaged: Packaged | None
) -> None:
    """Emit ``driftline.model.rejected`` for a gate outcome that pages (the champion stays)."""
    events.emit(
        events.MODEL_REJECTED,
        spec.name,
        {
            "reason": decision.reason,
            "outcome": decision.outcome,
            "tag": packaged.tag if packaged else None,
            "decision": decision.as_dict(),
        },
        alerts.model_rejected(
            spec.name,
            champion.version if champion else None,
            decision.reason,
            events.current_run_url(),
            decision.outcome,
        ),
    )


def notify_model_promoted(spec: ModelSpec, packaged: Packaged, entry: LedgerEntry, decision: GateDecision) -> None:
    """Emit ``driftline.model.promoted``: the new champion and the one it replaced."""
    events.emit(
        events.MODEL_PROMOTED,
        spec.name,
        {"version": packaged.version, "tag": packaged.tag, "previous": entry.from_version, "reason": decision.reason},
        alerts.model_promoted(
            spec.name, packaged.version, entry.from_version, decision.reason, events.current_run_url()
        ),
    )


def _about(spec: ModelSpec, drift: DriftReport, scored: Scored) -> dict[str, Any]:
    """What every drift event says about the batch or window it judged."""
    return {
        "model": spec.name,
        "version": drift.version,
        "fingerprint": drift.batch,
        "source": scored.source,
        "batch": scored.stored,
        "report": drift.report_path,
    }


def notify_drift_undecided(spec: ModelSpec, drift: DriftReport, scored: Scored) -> None:
    """Emit ``driftline.drift.undecided``: columns too small or unscorable, never counted as fine."""
    columns: list[dict[str, Any]] = [
        {"column": c.column, "role": c.role, "status": c.status, "note": c.note} for c in drift.undecided()
    ]
    events.emit(
        events.DRIFT_UNDECIDED,
        spec.name,
        {**_about(spec, drift, scored), "rows": drift.rows, "columns": columns},
        alerts.drift_undecided(
            spec.name,
            drift.version,
            f"{scored.source} {scored.origin}",
            columns,
            drift.report_path,
            events.current_run_url(),
        ),
    )


def notify_drift_detected(spec: ModelSpec, drift: DriftReport, scored: Scored, decision: PolicyDecision) -> None:
    """Emit ``driftline.drift.detected`` (the retrain trigger listens): the drifted columns with their scores."""
    columns: list[dict[str, Any]] = [
        {
            "column": c.column,
            "role": c.role,
            "score": c.score,
            "method": c.method,
            "statistic": c.statistic,
            "floor": c.floor,
            "threshold": c.threshold,
            "rows": c.rows,
        }
        for c in drift.drifted
    ]
    events.emit(
        events.DRIFT_DETECTED,
        spec.name,
        {**_about(spec, drift, scored), "reason": decision.reason, "kinds": drift.kinds(), "columns": columns},
        alerts.drift_detected(
            spec.name,
            drift.version,
            f"{scored.source} {scored.origin}",
            decision.reason,
            columns,
            drift.report_path,
            events.current_run_url(),
        ),
    )


def notify_monitor_ran(spec: ModelSpec, outcomes: list[BatchOutcome]) -> None:
    """Emit ``driftline.monitor.ran`` (the dead-man's switch listens for its absence) with what the run handled."""
    events.emit(events.MONITOR_RAN, spec.name, batches.counts(outcomes))
