"""The monitor loop: new batch → validate → profile → drift vs the champion's reference → policy → event.

Closed live-traffic windows (profiled by the service) take the same path from "drift" on: their profile is scored
against the reference of the version that served them, recorded, and counted by the drift policy like a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from driftline.errors import DataValidationError, StoreError
from driftline.monitoring.drift import DriftReport
from driftline.monitoring.policy import PolicyDecision
from driftline.oncall import alerts, events
from driftline.registry import BatchStatus, open_registry
from driftline.settings import quiet_telemetry
from driftline.spec import ModelSpec, load_spec
from tasks.artifacts import artifact_key
from tasks.data import load_batches, reject_batch
from tasks.drift import score_drift
from tasks.monitoring import (
    archive_batch,
    claim_batch,
    claim_window,
    decide_retrain,
    find_new_batches,
    find_traffic_windows,
    load_model,
    merge_window,
    predict_batch,
    reference_predictions,
)
from tasks.profiling import profile_batch
from tasks.registry import read_champion
from tasks.validation import validate_batch


@dataclass(frozen=True)
class BatchOutcome:
    """What the monitor did with one landed batch."""

    origin: str
    fingerprint: str
    status: str  # accepted, quarantined, duplicate; window (a live-traffic window)
    drifted: list[str] = field(default_factory=list)
    decision: PolicyDecision | None = None
    report_path: str | None = None
    undecided: list[str] = field(default_factory=list)  # columns too small or unscorable: never counted as fine


@flow(name="monitor", flow_run_name="monitor-{model}")
def monitor(model: str) -> list[BatchOutcome]:
    """Score the batches waiting in the model's landing location and the closed live-traffic windows for drift;
    request a retrain when the drift policy says so."""
    quiet_telemetry()
    logger = get_run_logger()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    spec = load_spec(model)
    champion = read_champion(spec.name)
    if champion is None:
        logger.warning("%s: no champion yet; nothing to compare batches with (run `driftline train %s`)", model, model)
        events.emit(events.MONITOR_RAN, spec.name, {"batches": 0, "windows": 0, "champion": None})
        return []
    registry = open_registry()
    reference = registry.version(spec.name, champion.version).lineage.profile_path
    predictor: Any = None  # the champion's pipeline, loaded for the first batch: its predictions are scored

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
            kept_path, message = reject_batch(batch, report, spec, where="landing")
            registry.finish_batch(
                spec.name,
                batch.fingerprint,
                status=BatchStatus.QUARANTINED,
                stored_path=str(kept_path),
                rows=batch.rows,
                flow_run_id=run_id,
            )
            failures.append(message)
            outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, "quarantined"))
            continue
        predictor = predictor if predictor is not None else load_model(spec, champion.version)
        predictions = predict_batch(predictor, batch, spec)
        profile = profile_batch(batch, spec, kind="batch", predictions=predictions)
        stored = archive_batch(spec, batch)
        drift = score_drift(
            spec,
            champion.version,
            reference,
            profile.path,
            batch.fingerprint,
            prediction_reference=reference_predictions(spec, champion.version) if predictions else None,
        )
        outcomes.append(
            _decide(spec, drift, BatchStatus.ACCEPTED, batch.origin, stored, profile.path, batch.rows, run_id)
        )

    for window in find_traffic_windows(spec):
        if not claim_window(spec, window):
            continue
        window_reference = _reference_of(spec.name, window.version, reference)
        profile = merge_window(window)
        drift = score_drift(
            spec,
            window.version,
            window_reference,
            profile.path,
            window.key,
            report_name=f"window-{window.name}",
            prediction_reference=reference_predictions(spec, window.version),
            labeled=False,  # served rows carry no label: the target is not absent, it is not there to score
        )
        origin = f"traffic window {window.start} ({window.version}, {len(window.parts)} part(s))"
        outcomes.append(
            _decide(spec, drift, BatchStatus.WINDOW, origin, profile.path, profile.path, profile.rows, run_id)
        )

    events.emit(
        events.MONITOR_RAN,
        spec.name,
        {
            "batches": sum(o.status != "window" for o in outcomes),
            "windows": sum(o.status == "window" for o in outcomes),
        },
    )
    if failures:
        raise DataValidationError("\n".join(failures))
    return outcomes


def _reference_of(model: str, version: str, champion_reference: str) -> str:
    """The reference profile of the version that served a window; the champion's if the registry lacks it."""
    try:
        return open_registry().version(model, version).lineage.profile_path
    except StoreError:
        get_run_logger().warning(
            "%s: version %s served traffic but is not in the registry; using the champion's reference", model, version
        )
        return champion_reference


def _decide(
    spec: ModelSpec,
    drift: DriftReport,
    status: BatchStatus,
    origin: str,
    stored: str,
    profile_path: str,
    rows: int,
    run_id: str | None,
) -> BatchOutcome:
    """Record a scored batch or window, publish its drift table, apply the policy, and emit drift if it says so."""
    logger = get_run_logger()
    open_registry().finish_batch(
        spec.name,
        drift.batch,
        status=status,
        stored_path=stored,
        rows=rows,
        champion_version=drift.version,
        drift_detected=drift.detected,
        drift=drift,
        profile_path=profile_path,
        report_path=drift.report_path,
        flow_run_id=run_id,
    )
    create_table_artifact(
        key=artifact_key(spec.name, "drift"),
        table=[
            {
                "column": c.column,
                "role": c.role,
                "kind": c.kind,
                "status": c.status,
                "rows": c.rows,
                "score": None if c.score is None else round(c.score, 4),
                "noise floor": None if c.floor is None else round(c.floor, 4),
                "effect": c.effect,
                "threshold": None if c.threshold is None else round(c.threshold, 4),
                "statistic": c.statistic or c.note,
            }
            for c in drift.columns
        ],
        description=f"{origin}: {drift.summary()}\nreport: {drift.report_path}",
    )
    decision = decide_retrain(spec, drift.batch, run_id)
    logger.info("%s: %s: %s; %s: %s", spec.name, origin, drift.summary(), decision.decision, decision.reason)
    source = "traffic" if status == BatchStatus.WINDOW else "batch"
    about = {
        "model": spec.name,
        "version": drift.version,
        "fingerprint": drift.batch,
        "source": source,
        "batch": stored,
        "report": drift.report_path,
    }
    undecided = drift.undecided()
    if undecided:
        logger.warning("%s: %s: drift not decided for %s", spec.name, origin, ", ".join(c.column for c in undecided))
        columns: list[dict[str, Any]] = [
            {"column": c.column, "role": c.role, "status": c.status, "note": c.note} for c in undecided
        ]
        events.emit(
            events.DRIFT_UNDECIDED,
            spec.name,
            {**about, "rows": drift.rows, "columns": columns},
            alerts.drift_undecided(
                spec.name, drift.version, f"{source} {origin}", columns, drift.report_path, events.current_run_url()
            ),
        )
    if decision.retrain:
        columns = [
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
            {**about, "reason": decision.reason, "kinds": drift.kinds(), "columns": columns},
            alerts.drift_detected(
                spec.name,
                drift.version,
                f"{source} {origin}",
                decision.reason,
                columns,
                drift.report_path,
                events.current_run_url(),
            ),
        )
    return BatchOutcome(
        origin,
        drift.batch,
        status,
        [c.column for c in drift.drifted],
        decision,
        drift.report_path,
        [c.column for c in undecided],
    )
