"""Profile batches with whylogs and keep the profiles in the profile store."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import profiles
from driftline.data import Batch
from driftline.drift import PREDICTION
from driftline.profiles import ProfileRecord
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="profile-batch", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def profile_batch(
    batch: Batch, spec: ModelSpec, kind: str = "reference", predictions: list[Any] | None = None
) -> ProfileRecord:
    """Profile the spec's columns of a batch (and the champion's predictions on it, if given) into the store.

    The profile is ``<store>/<model>/<kind>/<fingerprint>.bin``; predictions are its ``prediction`` column.
    """
    columns = [c for c in spec.columns if c in batch.frame.columns]
    frame = batch.frame[columns]
    if predictions is not None:
        frame = frame.assign(**{PREDICTION: predictions})
    return profiles.store_profile(frame, get_settings().profiles, spec.name, kind, batch.fingerprint)
