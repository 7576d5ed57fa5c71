"""A model's predictions for prediction drift: on a monitored batch, and on its own holdout (the reference)."""

from __future__ import annotations

from logging import Logger, LoggerAdapter
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError, ModelIntegrityError
from driftline.loop import profiles, store
from driftline.loop.data import Batch
from driftline.monitoring.drift import PREDICTION
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    from driftline.registry import Registry

# Prediction drift is judged on at most this many rows of a batch: above ~10,000 rows its threshold is the effect
# size, not the noise floor, so predicting every row of a 10M-row batch would buy nothing but time.
PREDICTION_SAMPLE = 100_000


def load_version(registry: Registry, spec: ModelSpec, version: str) -> Any:
    """Load a version's fitted pipeline from the model store, its files checked against the recorded digests."""
    record = registry.version(spec.name, version)
    return store.load(record.tag, record.lineage.model_files)


def predict(model: Any, batch: Batch, spec: ModelSpec, logger: Logger | LoggerAdapter[Any]) -> list[Any] | None:
    """The model's predictions on a validated batch (a seeded sample of it above ``PREDICTION_SAMPLE`` rows);
    None (and a warning) if it cannot predict."""
    rows = batch.sample(spec.features.columns, PREDICTION_SAMPLE)
    try:
        return list(model.predict(rows))
    except (KeyError, ValueError, TypeError) as error:
        logger.warning("%s: %s: no predictions, prediction drift not scored: %s", spec.name, batch.origin, error)
        return None


def reference_predictions(
    registry: Registry, spec: ModelSpec, version: str, store_root: str, logger: Logger | LoggerAdapter[Any]
) -> str | None:
    """The profile of a version's predictions on its own holdout: the reference for prediction drift.

    Made once per version and kept in the profile store (``<store>/<model>/reference/<version>-prediction.bin``);
    None (and a warning) when the version's holdout or model cannot be read.
    """
    import fsspec
    import pandas as pd

    path = profiles.profile_path(store_root, spec.name, "reference", f"{version}-prediction")
    fs, _, (local,) = fsspec.get_fs_token_paths(path)
    if fs.exists(local):
        return path
    try:
        record = registry.version(spec.name, version)
        holdout = pd.read_parquet(record.lineage.holdout_path)
        predicted = store.load(record.tag, record.lineage.model_files).predict(holdout[spec.features.columns])
    except ModelIntegrityError:
        raise  # a tampered model fails the run; it is not a missing reference
    except (DriftlineError, OSError, KeyError, ValueError) as error:
        logger.warning("%s:%s: no prediction reference, prediction drift not scored: %s", spec.name, version, error)
        return None
    profiles.write_profile(profiles.profile_view(pd.DataFrame({PREDICTION: list(predicted)})), path)
    return path
