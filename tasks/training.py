"""Gather the recent window, split deterministically, keep the holdout and fit the spec's pipeline."""

from __future__ import annotations

from driftline import libs
from driftline.loop import training
from driftline.loop.data import Batch
from driftline.loop.modeling import Split
from driftline.loop.training import FittedModel, Holdout, SetAside
from driftline.loop.validation import ValidationReport
from driftline.registry import Champion, open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import FILES, FIT, REGISTRY, run_logger, step


@step("split-holdout")
def split_holdout(spec: ModelSpec, *, batch: Batch, recent_rows: int = 0) -> Split:
    """Split rows into training and a fixed holdout by a seeded hash of each row.

    The last ``recent_rows`` rows are the recent window's; the split marks the held-out rows they gave.
    """
    return training.split_holdout(batch, spec, recent_rows)


@step("store-holdout", FILES)
def store_holdout(spec: ModelSpec, *, split: Split) -> Holdout:
    """Keep the holdout rows as Parquet, named by their digest, so any gate decision can be replayed."""
    return training.store_holdout(split, get_settings().holdouts_dir, spec.name)


@step("fit-model", cache=FIT)
def fit_model(spec: ModelSpec, *, split: Split) -> FittedModel:
    """Fit the spec's preprocessing and estimator on the training rows, the recent window weighted up."""
    return training.fit(split, spec)


@step("load-libraries")
def load_libraries(spec: ModelSpec) -> list[str]:
    """Import whylogs and the estimator's library before profiling and fitting run side by side in two threads.

    Called, never submitted: imports stay in the flow's thread (two threads importing the same packages can
    deadlock on Python's import locks).
    """
    return libs.load_for_fitting(spec.estimator.kind)


@step("champion-window", REGISTRY)
def champion_window(spec: ModelSpec, *, champion: Champion | None) -> list[str]:
    """The recent batches the champion was trained on that are still accepted (none quarantined since).

    A plain train adds them to the source, so it trains on the data the champion saw and cannot silently undo a
    champion that adapted to a shift.
    """
    return training.champion_window(open_registry(), spec, champion.version if champion else None, run_logger())


@step("load-window", FILES)
def load_window(spec: ModelSpec, *, paths: list[str]) -> list[Batch]:
    """Load the recent window's batches; one that is gone is left out with a warning, never failing the run."""
    return training.load_window(spec, paths, run_logger())


@step("set-aside-window-batch")
def set_aside_window_batch(
    spec: ModelSpec, *, batch: Batch, report: ValidationReport, flow_run_id: str | None
) -> SetAside:
    """Quarantine a window batch that now fails validation, take it out of the window, and record why.

    Its registry record becomes ``quarantined`` (so no later window includes it) and the decision
    ``window_batch_quarantined`` is recorded; the run goes on without it.
    """
    return training.set_aside(open_registry(), spec, batch, report, get_settings().quarantine_dir, flow_run_id)
