"""Decide whether the challenger replaces the champion, or whether the run would only retrain the champion."""

from __future__ import annotations

from driftline.loop import gate
from driftline.loop.evaluation import HoldoutScores
from driftline.loop.gate import GateDecision
from driftline.loop.lineage import TrainingIdentity
from driftline.loop.modeling import Split
from driftline.registry import Champion, open_registry
from driftline.spec import ModelSpec
from tasks.options import REGISTRY, step


@step("decide-promotion")
def decide_promotion(spec: ModelSpec, *, split: Split, scores: HoldoutScores) -> GateDecision:
    """Judge the challenger against the spec's gate and the champion on the fixed holdout and the recent rows."""
    return gate.judge(spec, split, scores)


@step("check-unchanged", REGISTRY)
def check_unchanged(spec: ModelSpec, *, champion: Champion | None, identity: TrainingIdentity) -> GateDecision | None:
    """The ``unchanged`` decision if this run's data, spec and code equal the champion's lineage; else None."""
    return gate.unchanged_since(open_registry(), spec, champion, identity)
