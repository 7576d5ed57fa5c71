"""Decide whether the challenger replaces the champion."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import gate
from driftline.gate import GateDecision
from driftline.modeling import Metrics
from driftline.spec import ModelSpec
from tasks.evaluation import ChampionScore


@task(name="decide-promotion", cache_policy=NO_CACHE)
def decide_promotion(
    spec: ModelSpec,
    challenger: Metrics,
    champion: ChampionScore,
    holdout_digest: str,
    windows: dict[str, Any] | None = None,
) -> GateDecision:
    """Judge the challenger against the spec's gate and the champion on the same holdout.

    ``windows`` (both models' scores on other rows: the champion's own holdout, the recent drifted window) is
    recorded with the decision as evidence.
    """
    decision = gate.decide(spec, challenger, champion.metrics, champion.version, holdout_digest, champion.error)
    return replace(decision, windows=windows or {})
