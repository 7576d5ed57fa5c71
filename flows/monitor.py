"""The monitor loop: new batch → validate → profile → drift vs the champion's reference → policy → event.

Closed live-traffic windows (profiled by the service) take the same path from "drift" on: their profile is scored
against the reference of the version that served them, recorded, and counted by the drift policy like a batch.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline.errors import DataValidationError, StoreError
from driftline.loop.data import Batch
from driftline.loop.landing import Changed, Entry, EntryState, Reason, Unreadable
from driftline.loop.quarantine import Rejected
from driftline.loop.statuses import BatchStatus
from driftline.monitoring.batches import BatchOutcome, Scored
from driftline.monitoring.drift import DriftReport
from driftline.monitoring.traffic import TrafficWindow
from driftline.oncall import events
from driftline.registry import Champion, ClaimOutcome, Hold
from driftline.settings import pause_at, quiet_telemetry
from driftline.spec import ModelSpec, load_spec
from tasks.artifacts import publish_drift
from tasks.data import reject_batch
from tasks.drift import score_drift
from tasks.monitoring import (
    archive_batch,
    claim_batch,
    claim_window,
    decide_retrain,
    file_exists,
    find_new_batches,
    find_traffic_windows,
    keeping_window,
    landing_hold,
    load_model,
    merge_window,
    predict_batch,
    quarantine_entry,
    read_entry,
    read_reference,
    record_drift,
    record_quarantined,
    record_unreadable,
    recover_stranded,
    reference_predictions,
    release_batch,
    release_window,
    restore_batch,
)
from tasks.notification import (
    notify_drift_detected,
    notify_drift_undecided,
    notify_monitor_ran,
    notify_validation_failed,
)
from tasks.profiling import profile_batch
from tasks.registry import read_champion
from tasks.validation import validate_batch


@flow(name="monitor", flow_run_name="monitor-{model}")
def monitor(model: str) -> list[BatchOutcome]:
    """Score the batches waiting in the model's landing location and the closed live-traffic windows for drift;
    request a retrain when the drift policy says so."""
    quiet_telemetry()
    logger = get_run_logger()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    spec = load_spec(model)
    champion = read_champion(spec)
    if champion is None:
        logger.warning("%s: no champion yet; nothing to compare batches with (run `driftline train %s`)", model, model)
        events.emit(events.MONITOR_RAN, spec.name, {"batches": 0, "windows": 0, "champion": None})
        return []
    reference = read_reference(spec, version=champion.version)
    predictor: Any = None  # the champion's pipeline, loaded for the first batch: its predictions are scored

    outcomes: list[BatchOutcome] = []
    failures: list[str] = []
    released: list[str] = []
    recover_stranded(spec)  # a batch archived by a run that died before recording it goes back to the landing area
    for entry in find_new_batches(spec):
        if not moves(entry):  # waiting, or a directory/device left in place: reported, nothing read or moved
            landed = land(spec, entry, champion, run_id)
            outcomes.extend([landed] if isinstance(landed, BatchOutcome) else [])
            continue
        # Leased before it is read: reading, quarantine and scoring happen under the lease; exactly one run has it.
        with landing_hold(spec, entry.path, run_id) as hold:
            if hold is None:
                logger.info("%s: %s is being processed by another monitor run; left for later", model, entry.path)
                outcomes.append(BatchOutcome(entry.path, "", "busy"))
                continue
            if not file_exists(entry.path):  # taken (archived or quarantined) by another run since the listing
                logger.info("%s: %s was taken by another monitor run since the listing; skipped", model, entry.path)
                continue
            landed = land(spec, entry, champion, run_id)
            if isinstance(landed, BatchOutcome):
                outcomes.append(landed)
                failures.extend([landed.reason] if landed.reason and landed.fingerprint else [])  # quarantined
                continue
            if landed is None:
                continue
            batch = landed
            claim = claim_batch(spec, batch=batch, hold=hold)
            if claim.outcome == ClaimOutcome.BUSY:
                by = claim.previous.holder if claim.previous else None
                logger.info(
                    "%s: %s: the same content is being processed by %s; left for later", model, batch.origin, by
                )
                outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, "busy"))
                continue
            if claim.outcome == ClaimOutcome.DUPLICATE:
                kept = archive_batch(spec, batch=batch, duplicate=True)
                logger.info("%s: %s repeats batch %s; kept at %s", model, batch.origin, batch.fingerprint[:12], kept)
                outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, "duplicate"))
                continue
            pause_at("monitor.claimed")
            try:
                report = validate_batch(spec, batch=batch)
                if not report.success:
                    rejected = reject_batch(spec, batch=batch, report=report, where="landing")
                    notify_validation_failed(spec, rejected, champion)
                    record_quarantined(spec, rejected=rejected, flow_run_id=run_id, hold=hold)
                    failures.append(rejected.message)
                    outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, BatchStatus.QUARANTINED))
                    continue
                predictor = predictor if predictor is not None else load_model(spec, version=champion.version)
                outcomes.append(score_batch(spec, batch, champion.version, predictor, reference, run_id, hold))
            except Exception as error:  # a transient failure (a store, the registry): the next run retries the batch
                release_batch(spec, hold=hold, batch=batch, error=str(error))
                released.append(f"{batch.origin}: released for the next run after: {error}")
                outcomes.append(BatchOutcome(batch.origin, batch.fingerprint, BatchStatus.RELEASED, reason=str(error)))

    for window in find_traffic_windows(spec):
        if claim_window(spec, window=window):
            try:
                with keeping_window(spec, window):
                    outcomes.append(score_window(spec, window, reference, run_id))
            except Exception as error:
                release_window(spec, window=window)
                released.append(f"traffic window {window.key}: released for the next run after: {error}")

    notify_monitor_ran(spec, outcomes)
    if released:  # nothing lost, but a store failed: the run fails so on-call sees it
        raise StoreError("\n".join([*released, *failures]))
    if failures:
        raise DataValidationError("\n".join(failures))
    return outcomes


def moves(entry: Entry) -> bool:
    """Whether the monitor reads or moves this entry (a ready file, or a link to quarantine): done under a lease."""
    return entry.state == EntryState.READY or entry.kind == "symlink"


def land(spec: ModelSpec, entry: Entry, champion: Champion | None, run_id: str | None) -> Batch | BatchOutcome | None:
    """Read one landing entry: its batch if it reads; else its outcome (quarantined or rejected), or None if it waits.

    A file that cannot be read, and a symbolic link, go to quarantine here (moved, byte-identical, the reason in plain
    words, ``driftline.validation.failed`` emitted, the registry told), so nothing in the landing area blocks a run.
    """
    logger = get_run_logger()
    if entry.state == EntryState.WAITING:
        logger.info("%s: %s waits: %s", spec.name, entry.path, entry.reason)
        return None
    if entry.state == EntryState.NOT_REGULAR and entry.kind != "symlink":
        logger.warning("%s: %s is not a batch: %s", spec.name, entry.path, entry.reason)
        return BatchOutcome(entry.path, "", "rejected", reason=entry.reason)
    if entry.state == EntryState.NOT_REGULAR:
        unreadable = Unreadable(
            entry, Reason.NOT_REGULAR, f"{entry.path}: {entry.reason}; moved to quarantine as a link"
        )
    else:
        read = read_entry(spec, entry=entry)
        if isinstance(read, Changed):
            logger.info("%s: %s", spec.name, read.message)
            return None
        if isinstance(read, Batch):
            return read
        unreadable = read
    kept = quarantine_entry(spec, entry=entry, reason=unreadable.reason, message=unreadable.message)
    rejected = Rejected(
        origin=entry.path,
        fingerprint=kept.digest,
        rows=0,
        kept=kept.path,
        where="landing",
        left_in_place=False,
        suite=f"(not read: {unreadable.reason})",
        failures=[unreadable.message],
        message=f"{unreadable.message}\n  moved out of the landing area to {kept.path} (byte-identical)",
    )
    notify_validation_failed(spec, rejected, champion)
    record_unreadable(spec, fingerprint=kept.digest, origin=entry.path, kept=str(kept.path), flow_run_id=run_id)
    status = "rejected" if entry.state == EntryState.NOT_REGULAR else BatchStatus.QUARANTINED
    return BatchOutcome(entry.path, kept.digest, status, reason=rejected.message)


def score_batch(
    spec: ModelSpec, batch: Batch, version: str, predictor: Any, reference: str, run_id: str | None, hold: Hold
) -> BatchOutcome:
    """Profile a validated batch with the champion's predictions on it, score it for drift, archive it and record it.

    A failure before the record leaves the file in (or moves it back to) the landing area: nothing is lost.
    """
    predictions = predict_batch(spec, model=predictor, batch=batch)
    profile = profile_batch(spec, batch=batch, kind="batch", predictions=predictions)
    pause_at("monitor.scoring")
    drift = score_drift(
        spec,
        version=version,
        reference=reference,
        profile=profile.path,
        key=batch.fingerprint,
        prediction_reference=reference_predictions(spec, version=version) if predictions else None,
    )
    stored = archive_batch(spec, batch=batch)
    pause_at("monitor.archived")
    scored = Scored.batch(batch, stored, profile)
    try:
        record_drift(spec, drift=drift, scored=scored, flow_run_id=run_id, hold=hold)
    except Exception:
        restore_batch(spec, stored=stored, batch=batch)
        raise
    return decide(spec, drift, scored, run_id)


def score_window(spec: ModelSpec, window: TrafficWindow, champion_reference: str, run_id: str | None) -> BatchOutcome:
    """Score a claimed live-traffic window against the reference of the version that served it."""
    reference = read_reference(spec, version=window.version, fallback=champion_reference)
    profile = merge_window(spec, window=window)
    drift = score_drift(
        spec,
        version=window.version,
        reference=reference,
        profile=profile.path,
        key=window.key,
        report_name=f"window-{window.name}",
        prediction_reference=reference_predictions(spec, version=window.version),
        labeled=False,  # served rows carry no label: the target is not absent, it is not there to score
    )
    return judge(spec, drift, Scored.window(window, profile), run_id)


def judge(spec: ModelSpec, drift: DriftReport, scored: Scored, run_id: str | None) -> BatchOutcome:
    """Record a scored batch or window, publish its drift table, apply the policy, and emit drift if it says so."""
    record_drift(spec, drift=drift, scored=scored, flow_run_id=run_id)
    return decide(spec, drift, scored, run_id)


def decide(spec: ModelSpec, drift: DriftReport, scored: Scored, run_id: str | None) -> BatchOutcome:
    """For a recorded batch or window: publish its drift table, apply the policy, and emit drift if it says so."""
    logger = get_run_logger()
    publish_drift(spec, drift, scored.origin)
    decision = decide_retrain(spec, fingerprint=drift.batch, flow_run_id=run_id)
    logger.info("%s: %s: %s; %s: %s", spec.name, scored.origin, drift.summary(), decision.decision, decision.reason)
    if drift.undecided():
        undecided = ", ".join(c.column for c in drift.undecided())
        logger.warning("%s: %s: drift not decided for %s", spec.name, scored.origin, undecided)
        notify_drift_undecided(spec, drift, scored)
    if decision.retrain:
        notify_drift_detected(spec, drift, scored, decision)
    return BatchOutcome.scored(scored, drift, decision)
