"""Score models on the holdout: the challenger just fitted, and the champion on the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
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


def champion_metrics(champion: Champion | None, rows: pd.DataFrame, spec: ModelSpec) -> ChampionScore:
    """Load the champion from the model store and score it on ``rows``."""
    if champion is None:
        return ChampionScore(version=None, metrics=None)
    tag = open_registry().version(spec.name, champion.version).tag
    model = store.load(tag)
    try:
        return ChampionScore(champion.version, modeling.evaluate(model, rows, spec))
    except (KeyError, ValueError, DriftlineError) as error:
        return ChampionScore(champion.version, None, f"{type(error).__name__}: {error}")


@task(name="evaluate-champion", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def evaluate_champion(champion: Champion | None, split: Split, spec: ModelSpec) -> ChampionScore:
    """Load the champion from the model store and score it on the challenger's holdout rows."""
    return champion_metrics(champion, split.holdout, spec)


@task(name="evaluate-window", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def evaluate_window(model: Any, champion: Champion | None, rows: pd.DataFrame, spec: ModelSpec) -> dict[str, Any]:
    """Score challenger and champion on extra rows (a fixed or recent holdout); evidence, not the decision."""
    if rows.empty:
        return {"rows": 0}
    try:
        challenger = modeling.evaluate(model, rows, spec).score
    except ValueError as error:  # e.g. one class only in a small window: ROC AUC is undefined
        return {"rows": len(rows), "error": str(error)}
    scored = champion_metrics(champion, rows, spec)
    return {
        "rows": len(rows),
        "metric": spec.metric.name,
        "challenger": challenger,
        "champion": scored.metrics.score if scored.metrics else None,
        "champion_version": scored.version,
    }
