"""Score models on the holdout: the challenger just fitted, and the champion on the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import modeling, store
from driftline.errors import DriftlineError
from driftline.modeling import Metrics, Split
from driftline.registry import Champion, open_registry
from driftline.spec import ModelSpec


@dataclass(frozen=True)
class ChampionScore:
    """The champion's metrics on the challenger's holdout, or why it could not be scored."""

    version: str | None
    metrics: Metrics | None
    error: str | None = None


@task(name="evaluate-model", cache_policy=NO_CACHE)
def evaluate_model(model: Any, split: Split, spec: ModelSpec) -> Metrics:
    """Score a fitted model on the holdout."""
    return modeling.evaluate(model, split.holdout, spec)


@task(name="evaluate-champion", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def evaluate_champion(champion: Champion | None, split: Split, spec: ModelSpec) -> ChampionScore:
    """Load the champion from the model store and score it on the challenger's holdout rows."""
    if champion is None:
        return ChampionScore(version=None, metrics=None)
    tag = open_registry().version(spec.name, champion.version).tag
    model = store.load(tag)
    try:
        return ChampionScore(champion.version, modeling.evaluate(model, split.holdout, spec))
    except (KeyError, ValueError, DriftlineError) as error:
        return ChampionScore(champion.version, None, f"{type(error).__name__}: {error}")
