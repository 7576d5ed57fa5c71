"""Decide whether the challenger replaces the champion, or whether the run would only retrain the champion."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline.loop import gate
from driftline.loop.data import fingerprint
from driftline.loop.gate import GateDecision, RowsCompared
from driftline.loop.lineage import TrainingIdentity
from driftline.loop.modeling import Predictions, Split
from driftline.registry import Champion, open_registry
from driftline.spec import ModelSpec
from tasks.evaluation import HoldoutScores


@task(name="decide-promotion", cache_policy=NO_CACHE)
def decide_promotion(spec: ModelSpec, split: Split, scores: HoldoutScores) -> GateDecision:
    """Judge the challenger against the spec's gate and the champion on the fixed holdout and the recent rows."""
    champion = scores.champion_predictions
    holdout = RowsCompared("holdout", split.holdout_digest, scores.challenger, champion)
    if split.holdout_recent is None:
        # No window: every held-out row is a fixed-holdout row.
        fixed = replace(holdout, name="fixed")
        return gate.decide(spec, holdout, fixed, None, scores.champion.version, scores.champion.error)
    recent_rows = split.recent_mask

    def part(rows: np.ndarray) -> tuple[str, Predictions, Predictions | None]:
        subset = champion.subset(rows) if champion is not None else None
        return fingerprint(split.holdout[rows]), scores.challenger.subset(rows), subset

    fixed = RowsCompared("fixed", *part(~recent_rows))
    recent = RowsCompared("recent", *part(recent_rows))
    return gate.decide(spec, holdout, fixed, recent, scores.champion.version, scores.champion.error)


@task(name="check-unchanged", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def check_unchanged(spec: ModelSpec, champion: Champion | None, identity: TrainingIdentity) -> GateDecision | None:
    """The ``unchanged`` decision if this run's data, spec and code equal the champion's lineage; else None."""
    if champion is None:
        return None
    lineage = open_registry().version(spec.name, champion.version).lineage
    if identity.differences(lineage.identity()):
        return None
    return gate.unchanged(
        spec, champion.version, identity.data_fingerprint, lineage.holdout_rows, lineage.holdout_digest
    )
