"""Profile batches with whylogs and keep the profiles in the profile store."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline.loop import profiles
from driftline.loop.data import Batch
from driftline.loop.profiles import ProfileRecord
from driftline.monitoring.drift import PREDICTION
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="profile-batch", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def profile_batch(
    batch: Batch, spec: ModelSpec, kind: str = "reference", predictions: list[Any] | None = None
) -> ProfileRecord:
    """Profile the spec's columns of a batch (and the champion's predictions on it, if given) into the store.

    The profile is ``<store>/<model>/<kind>/<fingerprint>.bin``; predictions are its ``prediction`` column (they
    may cover a sample of the rows).
    """
    columns = [c for c in spec.columns if c in batch.frame.columns]
    frame = batch.frame[columns]
    if predictions is None:
        return profiles.store_profile(frame, get_settings().profiles, spec.name, kind, batch.fingerprint)
    # Predictions may cover a sample of the rows: profiled apart and merged, each column keeps its own count.
    view = profiles.profile_view(frame).merge(profiles.profile_view(pd.DataFrame({PREDICTION: predictions})))
    path = profiles.profile_path(get_settings().profiles, spec.name, kind, batch.fingerprint)
    profiles.write_profile(view, path)
    return ProfileRecord(path=path, rows=len(frame), columns=tuple(str(c) for c in view.get_columns()))
