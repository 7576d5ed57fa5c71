"""Score models on the held-out rows: the challenger just fitted, and the champion on the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError, ModelIntegrityError
from driftline.libs import lazy_module
from driftline.loop import modeling, store
from driftline.loop.modeling import Metrics, Predictions, Split
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

    from driftline.registry import Champion, Registry
else:
    pd = lazy_module("pandas")


@dataclass(frozen=True)
class ChampionScore:
    """The champion's metrics on the challenger's holdout, or why it could not be scored."""

    version: str | None
    metrics: Metrics | None
    error: str | None = None


@dataclass(frozen=True)
class HoldoutScores:
    """Both models on every held-out row: predictions for the gate's bootstrap, metrics for the record."""

    challenger: Predictions
    metrics: Metrics
    champion: ChampionScore
    champion_predictions: Predictions | None = None


def champion_metrics(
    registry: Registry, champion: Champion | None, rows: pd.DataFrame, spec: ModelSpec
) -> ChampionScore:
    """Load the champion from the model store and score it on ``rows``."""
    if champion is None:
        return ChampionScore(version=None, metrics=None)
    record = registry.version(spec.name, champion.version)
    model = store.load(record.tag, record.lineage.model_files)
    try:
        return ChampionScore(champion.version, modeling.evaluate(model, rows, spec))
    except (KeyError, ValueError, DriftlineError) as error:
        return ChampionScore(champion.version, None, f"{type(error).__name__}: {error}")


def score_holdout(
    registry: Registry, model: Any, champion: Champion | None, split: Split, spec: ModelSpec
) -> HoldoutScores:
    """Predict with the challenger and the champion on the same held-out rows (fixed and recent), once each."""
    challenger = modeling.predict(model, split.holdout, spec)
    metrics = modeling.score(challenger, spec.metric.name)
    if champion is None:
        return HoldoutScores(challenger, metrics, ChampionScore(None, None))
    record = registry.version(spec.name, champion.version)
    # A champion whose files are not the ones packaged fails the run (and pages through run_failed); it is never
    # loaded, and never passed off as a champion that merely could not be scored.
    model = store.load(record.tag, record.lineage.model_files)
    try:
        predictions = modeling.predict(model, split.holdout, spec)
    except ModelIntegrityError:
        raise
    except (KeyError, ValueError, DriftlineError) as error:
        failed = ChampionScore(champion.version, None, f"{type(error).__name__}: {error}")
        return HoldoutScores(challenger, metrics, failed)
    scored = ChampionScore(champion.version, modeling.score(predictions, spec.metric.name))
    return HoldoutScores(challenger, metrics, scored, predictions)
