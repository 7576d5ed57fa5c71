"""The monitor loop: new batch → validate → profile → drift vs the champion's reference → policy → event."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from driftline import events
from driftline.errors import DataValidationError
from driftline.policy import PolicyDecision
from driftline.registry import open_registry
from driftline.settings import quiet_telemetry
from driftline.spec import load_spec
from tasks.artifacts import artifact_key
from tasks.data import load_batches, reject_batch
from tasks.drift import score_drift
from tasks.monitoring import archive_batch, claim_batch, decide_retrain, find_new_batches
from tasks.profiling import profile_batch
from tasks.registry import read_champion
from tasks.validation import validate_batch


@dataclass(frozen=True)
class BatchOutcome:
    """What the monitor did with one landed batch."""

    origin: str
    fingerprint: str
    status: str  # accepted, quarantined, duplicate
    drifted: list[str] = field(default_factory=list)
    decision: PolicyDecision | None = None
    report_path: str | None = None


@flow(name="monitor", flow_run_name="monitor-{model}")
def monitor(model: str) -> list[BatchOutcome]:
    """Process the batches waiting in the model's landing location and request a retrain when drift says so."""
    quiet_telemetry()
    logger = get_run_logger()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    spec = load_spec(model)
    champion = read_champion(spec.name)
    if champion is None:
        logger.warning("%s: no champion yet; nothing to compare batches with (run `driftline train %s`)", model, model)
        return []
    registry = open_registry()
    reference = registry.version(spec.name, champion.version).lineage["profile_path"]

    outcomes: list[BatchOutcome] = []
    failures: list[str] = []
    for path in find_new_batches(spec):
        (batch,) = load_batches(spec, path)
        if not claim_batch(spec, batch):
            kept = archive_batch(spec, batch, duplicate=True)
            logger.info("%s: %s repeats batch %s; kept at %s", model, batch.origin, batch.fingerprint[:12], kept)
            outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, "duplicate"))
            continue
        report = validate_batch(batch, spec)
        if not report.success:
            kept_path, message = reject_batch(batch, report, spec)
            registry.finish_batch(
                spec.name,
                batch.fingerprint,
                status="quarantined",
                stored_path=str(kept_path),
                rows=batch.rows,
                flow_run_id=run_id,
            )
            failures.append(message)
            outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, "quarantined"))
            continue
        profile = profile_batch(batch, spec, kind="batch")
        stored = archive_batch(spec, batch)
        drift = score_drift(spec, champion.version, reference, profile.path, batch.fingerprint)
        registry.finish_batch(
            spec.name,
            batch.fingerprint,
            status="accepted",
            stored_path=stored,
            rows=batch.rows,
            champion_version=champion.version,
            drift_detected=drift.detected,
            drift=drift.as_dict(),
            profile_path=profile.path,
            report_path=drift.report_path,
            flow_run_id=run_id,
        )
        create_table_artifact(
            key=artifact_key(spec.name, "drift"),
            table=[
                {"column": c.column, "kind": c.kind, "score": c.score, "threshold": c.threshold, "drifted": c.drifted}
                for c in drift.columns
            ],
            description=f"{drift.summary()}\nreport: {drift.report_path}",
        )
        decision = decide_retrain(spec, batch.fingerprint, run_id)
        logger.info("%s: %s; %s: %s", model, drift.summary(), decision.decision, decision.reason)
        if decision.retrain:
            events.emit(
                events.DRIFT_DETECTED,
                spec.name,
                {
                    "model": spec.name,
                    "version": champion.version,
                    "fingerprint": batch.fingerprint,
                    "batch": stored,
                    "reason": decision.reason,
                    "report": drift.report_path,
                    "columns": [
                        {"column": c.column, "score": c.score, "method": c.method, "threshold": c.threshold}
                        for c in drift.drifted
                    ],
                },
            )
        outcomes.append(
            BatchOutcome(
                batch.origin,
                batch.fingerprint,
                "accepted",
                [c.column for c in drift.drifted],
                decision,
                drift.report_path,
            )
        )
    if failures:
        raise DataValidationError("\n".join(failures))
    return outcomes
