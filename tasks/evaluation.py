"""Score models on the held-out rows: the challenger just fitted, and the champion on the same rows."""

from __future__ import annotations

from typing import Any

from driftline.loop import evaluation, modeling
from driftline.loop.evaluation import ChampionScore, HoldoutScores
from driftline.loop.modeling import Metrics, Split
from driftline.registry import Champion, open_registry
from driftline.spec import ModelSpec
from tasks.options import MODEL_STORE, step


@step("evaluate-model")
def evaluate_model(spec: ModelSpec, *, model: Any, split: Split) -> Metrics:
    """Score a fitted model on the holdout."""
    return modeling.evaluate(model, split.holdout, spec)


@step("evaluate-champion", MODEL_STORE)
def evaluate_champion(spec: ModelSpec, *, champion: Champion | None, split: Split) -> ChampionScore:
    """Load the champion from the model store and score it on the challenger's holdout rows."""
    return evaluation.champion_metrics(open_registry(), champion, split.holdout, spec)


@step("score-holdout", MODEL_STORE)
def score_holdout(spec: ModelSpec, *, model: Any, champion: Champion | None, split: Split) -> HoldoutScores:
    """Predict with the challenger and the champion on the same held-out rows (fixed and recent), once each."""
    return evaluation.score_holdout(open_registry(), model, champion, split, spec)
