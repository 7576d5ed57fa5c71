"""Split deterministically and fit the spec's pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from driftline.errors import DataError
from driftline.loop import data, modeling
from driftline.loop.data import Batch
from driftline.loop.modeling import Split, TrainingSchema
from driftline.loop.validation import ValidationReport
from driftline.monitoring.policy import Decision
from driftline.registry import BatchStatus, Champion, open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.data import reject_batch


@dataclass(frozen=True)
class FittedModel:
    """A fitted pipeline and the schema of the rows it was trained on."""

    model: Any = field(repr=False)
    schema: TrainingSchema
    estimator: str
    train_rows: int


@dataclass(frozen=True)
class Holdout:
    """The stored holdout: where it is and which rows (digest) it holds."""

    path: str
    digest: str
    rows: int


@task(name="split-holdout", cache_policy=NO_CACHE)
def split_holdout(batch: Batch, spec: ModelSpec, recent_rows: int = 0) -> Split:
    """Split rows into training and a fixed holdout by a seeded hash of each row.

    The last ``recent_rows`` rows are the recent window's; the split marks the held-out rows they gave.
    """
    modeling.check_target(batch.frame, spec, batch.origin)
    return modeling.split_holdout(batch.frame, spec, recent_rows)


@task(name="store-holdout", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def store_holdout(split: Split, spec: ModelSpec) -> Holdout:
    """Keep the holdout rows as Parquet, named by their digest, so any gate decision can be replayed."""
    folder = get_settings().holdouts_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split.holdout_digest[:16]}.parquet"
    if not path.exists():
        split.holdout.to_parquet(path, index=False)
    return Holdout(path=str(path), digest=split.holdout_digest, rows=len(split.holdout))


@task(name="fit-model", cache_policy=NO_CACHE)
def fit_model(split: Split, spec: ModelSpec) -> FittedModel:
    """Fit the spec's preprocessing and estimator on the training rows, the recent window weighted up."""
    model = modeling.fit(split.train, spec, modeling.recency_weights(split, spec))
    return FittedModel(
        model=model,
        schema=modeling.training_schema(split.train, spec),
        estimator=spec.estimator.kind,
        train_rows=len(split.train),
    )


@task(name="champion-window", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def champion_window(spec: ModelSpec, champion: Champion | None) -> list[str]:
    """The recent batches the champion was trained on that are still accepted (none quarantined since).

    A plain train adds them to the source, so it trains on the data the champion saw and cannot silently undo a
    champion that adapted to a shift.
    """
    if champion is None:
        return []
    registry = open_registry()
    window = registry.version(spec.name, champion.version).lineage.window
    accepted = {b.stored_path for b in registry.batches(spec.name, status=BatchStatus.ACCEPTED) if b.stored_path}
    left_out = [path for path in window if path not in accepted]
    if left_out:
        get_run_logger().info(
            "%s: %d of champion %s's window batches are no longer accepted and are left out: %s",
            spec.name,
            len(left_out),
            champion.version,
            ", ".join(left_out),
        )
    return [path for path in window if path in accepted]


@task(name="load-window", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def load_window(spec: ModelSpec, paths: list[str]) -> list[Batch]:
    """Load the recent window's batches; one that is gone is left out with a warning, never failing the run."""
    batches = []
    for path in paths:
        try:
            batches += data.load_source(spec, path)
        except DataError as error:
            get_run_logger().warning("%s: window batch left out: %s", spec.name, error)
    return batches


def set_aside_window_batch(batch: Batch, report: ValidationReport, spec: ModelSpec, run_id: str | None) -> str:
    """Quarantine a window batch that now fails validation, take it out of the window, and record why.

    Its registry record becomes ``quarantined`` (so no later window includes it) and the decision
    ``window_batch_quarantined`` is recorded; the run goes on without it. Returns what happened, for the log.
    """
    kept, message = reject_batch(batch, report, spec)
    registry = open_registry()
    record = next((b for b in registry.batches(spec.name) if b.stored_path == batch.origin), None)
    fingerprint = record.fingerprint if record else batch.fingerprint
    registry.finish_batch(
        spec.name, fingerprint, status=BatchStatus.QUARANTINED, stored_path=str(kept), flow_run_id=run_id
    )
    reason = f"window batch {batch.origin} fails validation; left out of the window and quarantined\n{message}"
    registry.record_decision(spec.name, Decision.WINDOW_BATCH_QUARANTINED, reason, fingerprint, run_id)
    return reason
