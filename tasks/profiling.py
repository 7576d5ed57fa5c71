"""Profile batches with whylogs and keep the profiles in the profile store."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import profiles
from driftline.data import Batch
from driftline.profiles import ProfileRecord
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@task(name="profile-batch", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def profile_batch(batch: Batch, spec: ModelSpec, kind: str = "reference") -> ProfileRecord:
    """Profile the spec's columns of a batch and store it as ``<store>/<model>/<kind>/<fingerprint>.bin``."""
    columns = [c for c in spec.columns if c in batch.frame.columns]
    return profiles.store_profile(batch.frame[columns], get_settings().profiles, spec.name, kind, batch.fingerprint)
