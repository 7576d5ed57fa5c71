"""Pick up new batches from a model's landing location and closed live-traffic windows; claim each once; record
what the monitor found and apply the retrain policy."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftline.errors import DriftlineError
from driftline.loop import data, landing
from driftline.loop.data import Batch
from driftline.loop.landing import Changed, Entry, Kept, Reason, Unreadable
from driftline.loop.profiles import ProfileRecord
from driftline.loop.quarantine import Rejected
from driftline.loop.statuses import BatchStatus
from driftline.monitoring import batches, policy, predictions, traffic
from driftline.monitoring.batches import Scored
from driftline.monitoring.drift import DriftReport
from driftline.monitoring.policy import PolicyDecision
from driftline.monitoring.traffic import TrafficWindow
from driftline.registry import (
    CLAIM_TTL_S,
    Claim,
    ClaimOutcome,
    Hold,
    Renewer,
    holder_dead,
    holder_for,
    open_registry,
)
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import FILES, MODEL_STORE, REGISTRY, run_logger, step


@step("find-new-batches", FILES)
def find_new_batches(spec: ModelSpec) -> list[Entry]:
    """Every entry in the model's landing location, by name: ready, waiting (not complete), or not a regular file."""
    return landing.scan(spec.landing, spec.monitor.settle_seconds, spec.monitor.ready_marker)


@step("read-entry", FILES)
def read_entry(spec: ModelSpec, *, entry: Entry) -> Batch | Unreadable | Changed:
    """Read a ready landing file as a batch; bad content comes back as Unreadable (with why), never raised."""
    return landing.read(entry, spec.source.format)


@step("quarantine-entry", FILES)
def quarantine_entry(spec: ModelSpec, *, entry: Entry, reason: Reason, message: str) -> Kept:
    """Move an unreadable landing file (byte-identical) or a symbolic link (as a link) into quarantine."""
    return landing.quarantine(entry, spec.name, get_settings().quarantine_dir, reason, message)


@step("record-unreadable", REGISTRY)
def record_unreadable(spec: ModelSpec, *, fingerprint: str, origin: str, kept: str, flow_run_id: str | None) -> None:
    """Record a landing file that could not be read as quarantined, keyed by its bytes' sha256."""
    registry = open_registry()
    registry.claim_batch(spec.name, fingerprint, origin)
    registry.finish_batch(
        spec.name, fingerprint, status=BatchStatus.QUARANTINED, stored_path=kept, rows=0, flow_run_id=flow_run_id
    )


@step("find-traffic-windows", FILES)
def find_traffic_windows(spec: ModelSpec) -> list[TrafficWindow]:
    """List the closed live-traffic windows in the profile store that no monitor run has claimed, oldest first."""
    return traffic.unclaimed_windows(
        open_registry(), spec.name, get_settings().profiles, datetime.now(UTC), spec.serving.window_minutes
    )


@step("claim-window", REGISTRY)
def claim_window(spec: ModelSpec, *, window: TrafficWindow) -> bool:
    """Claim a traffic window by its key (leased to this process); False if another monitor run has it."""
    return bool(open_registry().claim_batch(spec.name, window.key, window.folder))


@contextmanager
def keeping_window(spec: ModelSpec, window: TrafficWindow) -> Iterator[None]:
    """Renew a claimed window's lease in the background while it is merged, scored and recorded."""
    registry, holder = open_registry(), holder_for()

    def renew() -> bool:  # False only when another run has taken the window over (recorded: nothing to renew)
        if registry.renew_batch(spec.name, window.key, holder):
            return True
        record = registry.batch(spec.name, window.key)
        return not (record is not None and record.status == BatchStatus.PROCESSING and record.holder != holder)

    with Renewer(renew, CLAIM_TTL_S / 3, window.key):
        yield


@step("release-window", REGISTRY)
def release_window(spec: ModelSpec, *, window: TrafficWindow) -> bool:
    """Give a window's claim back after a transient failure (``released``): the next monitor run scores it."""
    return open_registry().give_back_batch(spec.name, window.key, holder_for())


@step("merge-window", FILES)
def merge_window(spec: ModelSpec, *, window: TrafficWindow) -> ProfileRecord:
    """Merge a window's per-process profiles into the window's profile in the store."""
    return traffic.merge_window(window, get_settings().profiles)


@contextmanager
def landing_hold(spec: ModelSpec, path: str, run_id: str | None) -> Iterator[Hold | None]:
    """Lease one landing file for this run before it is read (None: another live monitor run has it, so it is
    ``busy``); renewed in the background while the work goes on, and given back on leaving."""
    hold = Hold.take(open_registry(), spec.name, path, holder_for(run_id), CLAIM_TTL_S)
    try:
        yield hold
    finally:
        if hold is not None:
            hold.close()


def file_exists(path: str) -> bool:
    """Whether a listed landing entry is still there (another monitor run may have taken it since); a link counts
    as there even when its target is not (it is quarantined as a link, never followed)."""
    if "://" in path and not path.startswith("file://"):
        return data.exists(path)
    return os.path.lexists(path.removeprefix("file://"))


# No retries on a claim: a retried success would find its own claim busy.
@step("claim-batch")
def claim_batch(spec: ModelSpec, *, batch: Batch, hold: Hold) -> Claim:
    """Claim a batch's content under the file's hold: ``claimed`` or ``taken_over`` (this run processes it),
    ``busy`` (a live run has the same content) or ``duplicate`` (the content was accepted or quarantined)."""
    claim = hold.claim(batch.fingerprint, batch.origin)
    if claim.outcome == ClaimOutcome.TAKEN_OVER and claim.previous is not None:
        run_logger().warning(
            "%s: %s: took over the claim of %s (its process died or its lease expired)",
            spec.name,
            batch.origin,
            claim.previous.holder or "a run from before leases",
        )
    return claim


@step("release-batch", REGISTRY)
def release_batch(spec: ModelSpec, *, hold: Hold, batch: Batch, error: str) -> bool:
    """Give a batch's claim back after a transient failure (``released``); its file stays in (or is moved back to)
    the landing area, so the next monitor run retries it."""
    released = hold.give_back()
    where = "still in" if batch.path is None or data.exists(batch.path) else "missing from"
    run_logger().warning(
        "%s: %s: released for the next run after: %s (the file is %s the landing area)",
        spec.name,
        batch.origin,
        error,
        where,
    )
    return released


@step("restore-batch", FILES)
def restore_batch(spec: ModelSpec, *, stored: str, batch: Batch) -> None:
    """Move an archived batch back to where it landed (its outcome could not be recorded): nothing is lost."""
    if batch.path is not None and not data.exists(batch.path):
        data.move_to(Path(stored), batch.path)


@step("recover-stranded", FILES)
def recover_stranded(spec: ModelSpec) -> list[str]:
    """Move back to the landing area each batch whose run died between archiving it and recording it.

    Such a batch's claim is still ``processing`` under a dead holder (or an expired lease) and its file is gone from
    the landing area. Its archived copy (named ``<fingerprint[:16]>-<name>``) goes back where it landed, so this run
    finds it, takes the dead claim over and scores it: a kill at any point loses no batch.
    """
    from driftline.registry.batches import lease_expired  # the batch tables import SQLAlchemy

    root = get_settings().state_dir / "batches" / spec.name
    at = datetime.now(UTC)
    restored = []
    for record in open_registry().batches(spec.name, BatchStatus.PROCESSING):
        if not (holder_dead(record.holder) or lease_expired(record, at)) or file_exists(record.origin):
            continue
        pattern = f"{record.fingerprint[:16]}-{glob.escape(Path(record.origin.removeprefix('file://')).name)}*"
        for archived in sorted(root.glob(pattern)) if root.is_dir() else []:
            try:
                data.move_to(archived, record.origin)
            except (DriftlineError, OSError):
                continue  # another run moved it back first, or the landing area refuses: left where it is
            run_logger().warning(
                "%s: %s: its run died after archiving it (claim held by %s); moved back from %s to be scored",
                spec.name,
                record.origin,
                record.holder or "a run from before leases",
                archived,
            )
            restored.append(record.origin)
            break
    return restored


@step("archive-batch")
def archive_batch(spec: ModelSpec, *, batch: Batch, duplicate: bool = False) -> str:
    """Move a processed batch out of the landing area, byte-identical, into the state directory's history."""
    return str(data.archive(batch, get_settings().state_dir / "batches", spec.name, duplicate=duplicate))


@step("read-reference", REGISTRY)
def read_reference(spec: ModelSpec, *, version: str, fallback: str | None = None) -> str:
    """The reference profile of a version; ``fallback`` (with a warning) if the registry lacks the version."""
    return batches.reference_profile(open_registry(), spec.name, version, fallback, run_logger())


@step("record-quarantined", REGISTRY)
def record_quarantined(
    spec: ModelSpec, *, rejected: Rejected, flow_run_id: str | None, hold: Hold | None = None
) -> None:
    """Record a claimed batch that failed validation as quarantined (only while ``hold`` still holds it)."""
    batches.record_quarantined(open_registry(), spec.name, rejected, flow_run_id, hold.holder if hold else None)


@step("record-drift", REGISTRY)
def record_drift(
    spec: ModelSpec, *, drift: DriftReport, scored: Scored, flow_run_id: str | None, hold: Hold | None = None
) -> None:
    """Record a scored batch or window with its drift result, profile and report (only while ``hold`` holds it)."""
    batches.record_scored(open_registry(), spec.name, drift, scored, flow_run_id, hold.holder if hold else None)


@step("decide-retrain", REGISTRY)
def decide_retrain(spec: ModelSpec, *, fingerprint: str, flow_run_id: str | None) -> PolicyDecision:
    """Apply the spec's drift policy (N of M, cooldown) to the newest batches and windows; record the decision."""
    return policy.decide_retrain(open_registry(), spec, fingerprint, flow_run_id, datetime.now(UTC))


@step("load-champion-model", MODEL_STORE)
def load_model(spec: ModelSpec, *, version: str) -> Any:
    """Load a version's fitted pipeline from the model store (to predict on batches for prediction drift)."""
    return predictions.load_version(open_registry(), spec, version)


@step("predict-batch")
def predict_batch(spec: ModelSpec, *, model: Any, batch: Batch) -> list[Any] | None:
    """The model's predictions on a validated batch (a seeded sample of it above ``PREDICTION_SAMPLE`` rows), for
    prediction drift; None (and a warning) if it cannot predict."""
    return predictions.predict(model, batch, spec, run_logger())


@step("profile-reference-predictions", MODEL_STORE)
def reference_predictions(spec: ModelSpec, *, version: str) -> str | None:
    """The profile of a version's predictions on its own holdout: the reference for prediction drift.

    Made once per version and kept in the profile store (``<store>/<model>/reference/<version>-prediction.bin``);
    None (and a warning) when the version's holdout or model cannot be read.
    """
    return predictions.reference_predictions(open_registry(), spec, version, get_settings().profiles, run_logger())
