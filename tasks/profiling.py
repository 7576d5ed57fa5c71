"""Profile batches with whylogs and keep the profiles in the profile store."""

from __future__ import annotations

from typing import Any

from driftline.loop import profiles
from driftline.loop.data import Batch
from driftline.loop.profiles import ProfileRecord
from driftline.monitoring.drift import PREDICTION
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import FILES, PROFILE, step


@step("profile-batch", FILES, cache=PROFILE)
def profile_batch(
    spec: ModelSpec, *, batch: Batch, kind: str = "reference", predictions: list[Any] | None = None
) -> ProfileRecord:
    """Profile the spec's columns of a batch (and the champion's predictions on it, if given) into the store.

    The profile is ``<store>/<model>/<kind>/<fingerprint>.bin``; predictions are its ``prediction`` column (they
    may cover a sample of the rows).
    """
    extra = None if predictions is None else {PREDICTION: predictions}
    return profiles.profile_batch(batch, spec, get_settings().profiles, kind, extra)
