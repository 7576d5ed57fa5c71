"""Training steps around the model itself: the recent window, the fit, the stored holdout, the package.

Each function takes what it reads (the registry among them, passed in: the registry sits above the loop) and
returns a typed result; the train flow only calls them through its tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from logging import Logger, LoggerAdapter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import DataError
from driftline.loop import data, modeling, quarantine, store
from driftline.loop.data import Batch
from driftline.loop.gate import GateDecision, Outcome
from driftline.loop.modeling import Split, TrainingSchema
from driftline.loop.quarantine import Rejected
from driftline.loop.statuses import BatchStatus, Decision
from driftline.loop.validation import ValidationReport
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    from driftline.loop.lineage import Lineage
    from driftline.registry import Registry


@dataclass(frozen=True)
class FittedModel:
    """A fitted pipeline and the schema of the rows it was trained on."""

    model: Any = field(repr=False)
    schema: TrainingSchema
    estimator: str
    train_rows: int


@dataclass(frozen=True)
class Holdout:
    """The stored holdout: where it is, which rows (digest) it holds, and the split that chose them."""

    path: str
    digest: str
    rows: int
    seed: int
    fraction: float


@dataclass(frozen=True)
class Packaged:
    """A version in the model store: its tag and the lineage it carries (with its version and tag)."""

    tag: str
    lineage: Lineage

    @property
    def version(self) -> str:
        return self.tag.split(":", 1)[1]


@dataclass(frozen=True)
class SetAside:
    """A window batch that fails today's suite: quarantined, out of the window, and why (for the log)."""

    rejected: Rejected
    reason: str


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run decided: the outcome, the gate decision and, if promoted, the new champion.

    ``outcome`` is the gate's: accepted (promoted), not_better, regressed, incomparable, unservable or unchanged.
    """

    model: str
    promoted: bool
    outcome: Outcome
    decision: GateDecision
    version: str | None = None
    tag: str | None = None
    previous: str | None = None

    @classmethod
    def kept(
        cls, model: str, decision: GateDecision, previous: str | None, packaged: Packaged | None = None
    ) -> TrainOutcome:
        """The outcome of a run whose challenger was not promoted: the champion ``previous`` stays."""
        assert decision.outcome is not None
        outcome = cls(model, promoted=False, outcome=decision.outcome, decision=decision, previous=previous)
        return outcome if packaged is None else replace(outcome, version=packaged.version, tag=packaged.tag)


def fit(split: Split, spec: ModelSpec) -> FittedModel:
    """Fit the spec's preprocessing and estimator on the training rows, the recent window weighted up."""
    model = modeling.fit(split.train, spec, modeling.recency_weights(split, spec))
    return FittedModel(
        model=model,
        schema=modeling.training_schema(split.train, spec),
        estimator=spec.estimator.kind,
        train_rows=len(split.train),
    )


def split_holdout(batch: Batch, spec: ModelSpec, recent_rows: int = 0) -> Split:
    """Check the target, then split rows into training and a fixed holdout by a seeded hash of each row."""
    modeling.check_target(batch.frame, spec, batch.origin)
    return replace(modeling.split_holdout(batch.frame, spec, recent_rows), fingerprint=batch.fingerprint)


def store_holdout(split: Split, root: Path, model: str) -> Holdout:
    """Keep the holdout rows as Parquet under ``root/<model>/``, named by their digest, so any gate decision can
    be replayed."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split.holdout_digest[:16]}.parquet"
    if not path.exists():
        split.holdout.to_parquet(path, index=False)
    return Holdout(str(path), split.holdout_digest, len(split.holdout), split.seed, split.fraction)


def package(fitted: FittedModel, spec: ModelSpec, lineage: Lineage) -> Packaged:
    """Save the fitted pipeline to the BentoML model store with labels and lineage."""
    tag = store.save(
        spec.name,
        fitted.model,
        classifier=spec.task == "classification",
        labels={
            "task": spec.task,
            "estimator": spec.estimator.kind,
            "data-fingerprint": lineage.data_fingerprint[:16],
        },
        lineage=lineage.as_dict(),
        schema=fitted.schema.as_dict(),
    )
    packaged = Packaged(tag, lineage)
    # The digests are taken from the store as written, and kept outside it (registry, lineage) to check it against.
    files = store.digests(tag)
    return replace(
        packaged, lineage=lineage.model_copy(update={"version": packaged.version, "tag": tag, "model_files": files})
    )


def champion_window(
    registry: Registry, spec: ModelSpec, champion_version: str | None, logger: Logger | LoggerAdapter[Any]
) -> list[str]:
    """The recent batches the champion was trained on that are still accepted (none quarantined since).

    A plain train adds them to the source, so it trains on the data the champion saw and cannot silently undo a
    champion that adapted to a shift.
    """
    if champion_version is None:
        return []
    window = registry.version(spec.name, champion_version).lineage.window
    accepted = {b.stored_path for b in registry.batches(spec.name, status=BatchStatus.ACCEPTED) if b.stored_path}
    left_out = [path for path in window if path not in accepted]
    if left_out:
        logger.info(
            "%s: %d of champion %s's window batches are no longer accepted and are left out: %s",
            spec.name,
            len(left_out),
            champion_version,
            ", ".join(left_out),
        )
    return [path for path in window if path in accepted]


def load_window(spec: ModelSpec, paths: list[str], logger: Logger | LoggerAdapter[Any]) -> list[Batch]:
    """Load the recent window's batches; one that is gone is left out with a warning, never failing the run."""
    batches = []
    for path in paths:
        try:
            batches += data.load_source(spec, path)
        except DataError as error:
            logger.warning("%s: window batch left out: %s", spec.name, error)
    return batches


def set_aside(
    registry: Registry,
    spec: ModelSpec,
    batch: Batch,
    report: ValidationReport,
    root: Path,
    flow_run_id: str | None,
) -> SetAside:
    """Quarantine a window batch that now fails validation, take it out of the window, and record why.

    Its registry record becomes ``quarantined`` (so no later window includes it) and the decision
    ``window_batch_quarantined`` is recorded; the run goes on without it.
    """
    rejected = quarantine.reject(batch, report, spec, root)
    record = next((b for b in registry.batches(spec.name) if b.stored_path == batch.origin), None)
    fingerprint = record.fingerprint if record else batch.fingerprint
    registry.finish_batch(
        spec.name, fingerprint, status=BatchStatus.QUARANTINED, stored_path=str(rejected.kept), flow_run_id=flow_run_id
    )
    reason = f"window batch {batch.origin} fails validation; left out of the window and quarantined\n{rejected.message}"
    registry.record_decision(spec.name, Decision.WINDOW_BATCH_QUARANTINED, reason, fingerprint, flow_run_id)
    return SetAside(rejected, reason)
