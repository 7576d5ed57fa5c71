"""The promotion gate: a worse or barely better challenger is rejected, a clearly better one accepted, either way
round for metrics to minimise, and a champion that cannot be compared blocks promotion."""

from __future__ import annotations

import pandas as pd
import pytest

from driftline.gate import GateDecision
from driftline.modeling import Metrics
from driftline.spec import ModelSpec, load_spec, parse_spec
from tasks.evaluation import ChampionScore, evaluate_model
from tasks.gate import decide_promotion
from tasks.training import fit_model, split_holdout
from tests.conftest import Project
from tests.tasks.conftest import make_batch

DIGEST = "d" * 64


def _roc_auc(value: float) -> Metrics:
    return Metrics(values={"roc_auc": value, "accuracy": 0.9}, primary="roc_auc", rows=600)


def _rmse(value: float) -> Metrics:
    return Metrics(values={"rmse": value, "mae": value * 0.8, "r2": 0.5}, primary="rmse", rows=400)


def _decide(spec: ModelSpec, challenger: Metrics, champion: Metrics | None, version: str | None) -> GateDecision:
    return decide_promotion.fn(spec, challenger, ChampionScore(version, champion), DIGEST)


@pytest.fixture
def fraud(project: Project) -> ModelSpec:
    spec = load_spec("fraud")
    assert (spec.gate.min_metric, spec.gate.min_improvement) == (0.85, 0.002)
    return spec


def test_a_first_model_is_accepted_if_it_meets_the_minimum(fraud: ModelSpec) -> None:
    decision = _decide(fraud, _roc_auc(0.90), None, None)

    assert decision.accepted
    assert "first model" in decision.reason
    assert decision.champion is None and decision.champion_version is None
    assert decision.challenger == 0.90
    assert decision.holdout_rows == 600
    assert decision.holdout_digest == DIGEST


def test_a_first_model_below_the_minimum_is_rejected(fraud: ModelSpec) -> None:
    decision = _decide(fraud, _roc_auc(0.80), None, None)

    assert not decision.accepted
    assert "0.8000" in decision.reason and "0.8500" in decision.reason and "gate.min_metric" in decision.reason


def test_a_worse_challenger_is_rejected(fraud: ModelSpec) -> None:
    decision = _decide(fraud, _roc_auc(0.90), _roc_auc(0.92), "v1")

    assert not decision.accepted
    assert decision.improvement == pytest.approx(-0.02)
    assert decision.champion == 0.92
    assert "v1" in decision.reason


def test_a_challenger_better_by_more_than_the_minimum_improvement_is_accepted(fraud: ModelSpec) -> None:
    decision = _decide(fraud, _roc_auc(0.93), _roc_auc(0.92), "v1")

    assert decision.accepted
    assert decision.improvement == pytest.approx(0.01)


def test_an_improvement_below_the_minimum_is_rejected(fraud: ModelSpec) -> None:
    decision = _decide(fraud, _roc_auc(0.921), _roc_auc(0.920), "v1")

    assert not decision.accepted
    assert decision.improvement == pytest.approx(0.001)
    assert "gate.min_improvement 0.0020" in decision.reason


def test_a_better_challenger_below_the_minimum_metric_is_rejected(fraud: ModelSpec) -> None:
    decision = _decide(fraud, _roc_auc(0.84), _roc_auc(0.70), "v1")

    assert not decision.accepted
    assert "gate.min_metric" in decision.reason


def test_a_champion_that_could_not_be_scored_blocks_promotion(fraud: ModelSpec) -> None:
    score = ChampionScore("v3", None, "KeyError: 'risk_score'")

    decision = decide_promotion.fn(fraud, _roc_auc(0.99), score, DIGEST)

    assert not decision.accepted
    assert "v3" in decision.reason
    assert "could not be scored" in decision.reason
    assert "KeyError: 'risk_score'" in decision.reason


@pytest.fixture
def regression(project: Project) -> ModelSpec:
    return parse_spec(
        {
            "name": "fees",
            "task": "regression",
            "target": "fee",
            "source": {"path": "data/fees/*.parquet"},
            "features": {"numeric": ["amount"]},
            "estimator": {"kind": "ridge"},
            "metric": {"name": "rmse"},
            "gate": {"min_metric": 5.0, "min_improvement": 0.1},
        }
    )


@pytest.mark.parametrize(
    ("challenger", "champion", "accepted", "improvement"),
    [
        (3.0, 3.5, True, 0.5),  # lower error: better
        (3.5, 3.0, False, -0.5),  # higher error: worse
        (3.45, 3.5, False, 0.05),  # better, but by less than gate.min_improvement
    ],
)
def test_minimized_metrics_compare_lower_as_better(
    regression: ModelSpec, challenger: float, champion: float, accepted: bool, improvement: float
) -> None:
    decision = _decide(regression, _rmse(challenger), _rmse(champion), "v1")

    assert not decision.maximize
    assert decision.accepted is accepted
    assert decision.improvement == pytest.approx(improvement)


@pytest.mark.parametrize(("rmse", "accepted"), [(4.0, True), (6.0, False)])
def test_min_metric_is_a_ceiling_for_minimized_metrics(regression: ModelSpec, rmse: float, accepted: bool) -> None:
    decision = _decide(regression, _rmse(rmse), None, None)

    assert decision.accepted is accepted


def test_the_gate_prefers_the_stronger_of_two_real_models(project: Project, fraud_frame: pd.DataFrame) -> None:
    # A low floor, so the weak model is judged against the champion and not only against the minimum.
    strong_spec = load_spec("fraud", {"gate.min_metric": 0.5})
    weak_spec = load_spec("fraud", {"gate.min_metric": 0.5, "estimator.params": {"n_estimators": 2, "max_depth": 1}})
    split = split_holdout.fn(make_batch(fraud_frame), strong_spec)
    assert split_holdout.fn(make_batch(fraud_frame), weak_spec).holdout_digest == split.holdout_digest
    strong = evaluate_model.fn(fit_model.fn(split, strong_spec).model, split, strong_spec)
    weak = evaluate_model.fn(fit_model.fn(split, weak_spec).model, split, weak_spec)
    assert strong.score > weak.score + strong_spec.gate.min_improvement

    weak_against_strong = decide_promotion.fn(weak_spec, weak, ChampionScore("strong", strong), split.holdout_digest)
    strong_against_weak = decide_promotion.fn(strong_spec, strong, ChampionScore("weak", weak), split.holdout_digest)

    assert not weak_against_strong.accepted
    assert "vs champion strong" in weak_against_strong.reason
    assert strong_against_weak.accepted
    assert strong_against_weak.improvement == pytest.approx(strong.score - weak.score)


def test_first_run_always_accepts_a_first_model_below_the_minimum(project: Project) -> None:
    spec = load_spec("fraud", {"gate.first_run": "always"})

    assert _decide(spec, _roc_auc(0.80), None, None).accepted
