"""Pick up new batches from a model's landing location and closed live-traffic windows; claim each once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from driftline.errors import DriftlineError
from driftline.loop import data, profiles, store
from driftline.loop.data import Batch
from driftline.loop.profiles import ProfileRecord
from driftline.monitoring import traffic
from driftline.monitoring.drift import PREDICTION
from driftline.monitoring.policy import Decision, PolicyDecision, decide, flagged
from driftline.monitoring.traffic import TrafficWindow
from driftline.registry import SCORED, BatchStatus, open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="find-new-batches", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def find_new_batches(spec: ModelSpec) -> list[str]:
    """List the files waiting in the model's landing location, oldest name first."""
    return data.expand(spec.landing)


@task(name="find-traffic-windows", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def find_traffic_windows(spec: ModelSpec) -> list[TrafficWindow]:
    """List the closed live-traffic windows in the profile store that no monitor run has claimed, oldest first."""
    from datetime import UTC, datetime

    length = spec.serving.window_minutes * 60
    # Every process writes its part within a second of the window's end; the grace period covers slow stores.
    windows = traffic.closed_windows(
        get_settings().profiles, spec.name, datetime.now(UTC), length, grace_seconds=min(60.0, length)
    )
    seen = {b.fingerprint for b in open_registry().batches(spec.name, status=BatchStatus.WINDOW)}
    return [w for w in windows if w.key not in seen]


@task(name="claim-window", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def claim_window(spec: ModelSpec, window: TrafficWindow) -> bool:
    """Claim a traffic window by its key; False if another monitor run has it."""
    return open_registry().claim_batch(spec.name, window.key, window.parts[0].rsplit("/", 1)[0])


@task(name="merge-window", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def merge_window(window: TrafficWindow) -> ProfileRecord:
    """Merge a window's per-process profiles into the window's profile in the store."""
    return traffic.merge_window(window, get_settings().profiles)


@task(name="claim-batch", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def claim_batch(spec: ModelSpec, batch: Batch) -> bool:
    """Claim a batch by its fingerprint; False if this content was processed (or is being processed) already."""
    return open_registry().claim_batch(spec.name, batch.fingerprint, batch.origin)


def _archive_dir(spec: ModelSpec) -> Path:
    return get_settings().state_dir / "batches" / spec.name


@task(name="archive-batch", cache_policy=NO_CACHE)
def archive_batch(spec: ModelSpec, batch: Batch, duplicate: bool = False) -> str:
    """Move a processed batch out of the landing area, byte-identical, into the state directory's history."""
    folder = _archive_dir(spec) / ("duplicates" if duplicate else "")
    name = Path(batch.path or "batch.parquet").name
    # A redelivered file of the same name and content gets a name of its own: an earlier copy is never replaced.
    if batch.path is None:
        target = data.new_file(folder, f"{batch.fingerprint[:16]}-{name}")
        batch.frame.to_parquet(target, index=False)
        return str(target)
    return str(data.move_new(batch.path, folder, f"{batch.fingerprint[:16]}-{name}"))


@task(name="decide-retrain", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def decide_retrain(spec: ModelSpec, fingerprint: str, flow_run_id: str | None) -> PolicyDecision:
    """Apply the spec's drift policy (N of M, cooldown) to the newest batches and windows; record the decision."""
    from datetime import UTC, datetime

    registry = open_registry()
    # Batches where nothing could be decided do not count, so look further back than of_last.
    scored = registry.batches(spec.name, status=SCORED, limit=4 * spec.drift.of_last + 20)
    history = [flagged(b.drift, spec.drift.retrain_on, fallback=b.drift_detected) for b in scored]
    requests = registry.decisions(spec.name, limit=1, decision=Decision.RETRAIN_REQUESTED)
    decision = decide(history, spec.drift, requests[0].at if requests else None, datetime.now(UTC))
    registry.record_decision(spec.name, decision.decision, decision.reason, fingerprint, flow_run_id)
    return decision


@task(name="load-champion-model", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_model(spec: ModelSpec, version: str) -> Any:
    """Load a version's fitted pipeline from the model store (to predict on batches for prediction drift)."""
    return store.load(open_registry().version(spec.name, version).tag)


# Prediction drift is judged on at most this many rows of a batch: above ~10,000 rows its threshold is the effect
# size, not the noise floor, so predicting every row of a 10M-row batch would buy nothing but time.
PREDICTION_SAMPLE = 100_000


@task(name="predict-batch", cache_policy=NO_CACHE)
def predict_batch(model: Any, batch: Batch, spec: ModelSpec) -> list[Any] | None:
    """The model's predictions on a validated batch (a seeded sample of it above ``PREDICTION_SAMPLE`` rows), for
    prediction drift; None (and a warning) if it cannot predict."""
    rows = batch.frame[spec.features.columns]
    if len(rows) > PREDICTION_SAMPLE:
        rows = rows.sample(PREDICTION_SAMPLE, random_state=0)
    try:
        return list(model.predict(rows))
    except (KeyError, ValueError, TypeError) as error:
        get_run_logger().warning(
            "%s: %s: no predictions, prediction drift not scored: %s", spec.name, batch.origin, error
        )
        return None


@task(name="profile-reference-predictions", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def reference_predictions(spec: ModelSpec, version: str) -> str | None:
    """The profile of a version's predictions on its own holdout: the reference for prediction drift.

    Made once per version and kept in the profile store (``<store>/<model>/reference/<version>-prediction.bin``);
    None (and a warning) when the version's holdout or model cannot be read.
    """
    import fsspec
    import pandas as pd

    store_root = get_settings().profiles
    path = profiles.profile_path(store_root, spec.name, "reference", f"{version}-prediction")
    fs, _, (local,) = fsspec.get_fs_token_paths(path)
    if fs.exists(local):
        return path
    try:
        record = open_registry().version(spec.name, version)
        holdout = pd.read_parquet(record.lineage.holdout_path)
        predicted = store.load(record.tag).predict(holdout[spec.features.columns])
    except (DriftlineError, OSError, KeyError, ValueError) as error:
        get_run_logger().warning(
            "%s:%s: no prediction reference, prediction drift not scored: %s", spec.name, version, error
        )
        return None
    profiles.write_profile(profiles.profile_view(pd.DataFrame({PREDICTION: list(predicted)})), path)
    return path
