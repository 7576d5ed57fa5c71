"""Pick up new batches from a model's landing location and closed live-traffic windows; claim each once; record
what the monitor found and apply the retrain policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from driftline.registry import open_registry
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
    """Claim a traffic window by its key; False if another monitor run has it."""
    return bool(open_registry().claim_batch(spec.name, window.key, window.folder))


@step("merge-window", FILES)
def merge_window(spec: ModelSpec, *, window: TrafficWindow) -> ProfileRecord:
    """Merge a window's per-process profiles into the window's profile in the store."""
    return traffic.merge_window(window, get_settings().profiles)


@step("claim-batch", REGISTRY)
def claim_batch(spec: ModelSpec, *, batch: Batch) -> bool:
    """Claim a batch by its fingerprint; False if this content was processed (or is being processed) already."""
    return bool(open_registry().claim_batch(spec.name, batch.fingerprint, batch.origin))


@step("archive-batch")
def archive_batch(spec: ModelSpec, *, batch: Batch, duplicate: bool = False) -> str:
    """Move a processed batch out of the landing area, byte-identical, into the state directory's history."""
    return str(data.archive(batch, get_settings().state_dir / "batches", spec.name, duplicate=duplicate))


@step("read-reference", REGISTRY)
def read_reference(spec: ModelSpec, *, version: str, fallback: str | None = None) -> str:
    """The reference profile of a version; ``fallback`` (with a warning) if the registry lacks the version."""
    return batches.reference_profile(open_registry(), spec.name, version, fallback, run_logger())


@step("record-quarantined", REGISTRY)
def record_quarantined(spec: ModelSpec, *, rejected: Rejected, flow_run_id: str | None) -> None:
    """Record a claimed batch that failed validation as quarantined."""
    batches.record_quarantined(open_registry(), spec.name, rejected, flow_run_id)


@step("record-drift", REGISTRY)
def record_drift(spec: ModelSpec, *, drift: DriftReport, scored: Scored, flow_run_id: str | None) -> None:
    """Record a scored batch or window with its drift result, profile and report."""
    batches.record_scored(open_registry(), spec.name, drift, scored, flow_run_id)


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
