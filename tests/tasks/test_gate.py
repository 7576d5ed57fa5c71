"""The promotion gate: a clearly better challenger is promoted, a worse one is a regression that pages, a gain the
bootstrap cannot tell from noise is only "not better", the recent rows decide when there are any (without
forgetting the fixed holdout), and a run that would retrain the champion itself is "unchanged"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.loop import gate, modeling
from driftline.loop.evaluation import ChampionScore, HoldoutScores
from driftline.loop.gate import GateDecision, RowsCompared
from driftline.loop.lineage import CodeVersion, TrainingIdentity
from driftline.loop.modeling import Predictions
from driftline.registry import Champion, open_registry
from driftline.spec import ModelSpec, load_spec, parse_spec
from tasks.gate import check_unchanged, decide_promotion
from tasks.training import fit_model, split_holdout
from tests.conftest import Project, make_batch, make_lineage

DIGEST = "d" * 64


def _spec(metric: str = "accuracy", **gate_keys: Any) -> ModelSpec:
    task = "regression" if metric in ("rmse", "mae", "r2") else "classification"
    return parse_spec(
        {
            "name": "churn",
            "task": task,
            "target": "y",
            "source": {"path": "data/churn/*.parquet"},
            "features": {"numeric": ["x"]},
            "estimator": {"kind": "ridge" if task == "regression" else "logistic_regression"},
            "metric": {"name": metric},
            "gate": gate_keys,
        }
    )


def _labels(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, rows)


def _classifier(truth: np.ndarray, accuracy: float, seed: int) -> Predictions:
    """Predictions right on exactly ``accuracy`` of the rows (which rows: seeded), with matching probabilities."""
    wrong = np.random.default_rng(seed).permutation(len(truth))[: round((1 - accuracy) * len(truth))]
    predicted = truth.copy()
    predicted[wrong] = 1 - predicted[wrong]
    positive = np.where(predicted == 1, 0.8, 0.2)
    return Predictions("classification", truth, predicted, np.c_[1 - positive, positive], (0, 1), 1)


def _regressor(truth: np.ndarray, noise: float, seed: int) -> Predictions:
    return Predictions("regression", truth, truth + np.random.default_rng(seed).normal(0.0, noise, len(truth)))


def _join(first: Predictions | None, second: Predictions | None) -> Predictions | None:
    if first is None or second is None:
        return None
    proba = None if first.proba is None else np.vstack([first.proba, second.proba])  # type: ignore[list-item]
    return replace(
        first,
        truth=np.concatenate([first.truth, second.truth]),
        predicted=np.concatenate([first.predicted, second.predicted]),
        proba=proba,
    )


def _decide(
    spec: ModelSpec,
    challenger: Predictions,
    champion: Predictions | None,
    version: str | None = "v1",
    recent: tuple[Predictions, Predictions | None] | None = None,
) -> GateDecision:
    """The gate on a fixed holdout and, if given, recent rows (both models on each)."""
    fixed = RowsCompared("fixed", "f" * 64, challenger, champion)
    if recent is None:
        holdout = replace(fixed, name="holdout", digest=DIGEST)
        return gate.decide(spec, holdout, fixed, None, version)
    window = RowsCompared("recent", "r" * 64, *recent)
    joined = _join(challenger, recent[0])
    assert joined is not None
    holdout = RowsCompared("holdout", DIGEST, joined, _join(champion, recent[1]))
    return gate.decide(spec, holdout, fixed, window, version)


# -- first models ---------------------------------------------------------------------------------------------


def test_a_first_model_is_accepted_if_it_meets_the_minimum() -> None:
    truth = _labels(600, 1)

    decision = _decide(_spec(min_metric=0.85), _classifier(truth, 0.90, 2), None, None)

    assert decision.accepted and decision.outcome == "accepted"
    assert "first model" in decision.reason
    assert decision.champion is None and decision.champion_version is None
    assert decision.challenger == pytest.approx(0.90)
    assert decision.holdout_rows == 600
    assert decision.holdout_digest == DIGEST


def test_a_first_model_below_the_minimum_is_a_regression() -> None:
    decision = _decide(_spec(min_metric=0.85), _classifier(_labels(600, 1), 0.80, 2), None, None)

    assert not decision.accepted and decision.outcome == "regressed" and decision.pages
    assert "0.8000" in decision.reason and "0.8500" in decision.reason and "gate.min_metric" in decision.reason


def test_first_run_always_accepts_a_first_model_below_the_minimum() -> None:
    spec = _spec(min_metric=0.85, first_run="always")

    assert _decide(spec, _classifier(_labels(600, 1), 0.80, 2), None, None).accepted


# -- against the champion, on the fixed holdout -----------------------------------------------------------------


def test_a_clearly_better_challenger_is_accepted() -> None:
    truth = _labels(600, 1)

    decision = _decide(_spec(), _classifier(truth, 0.93, 2), _classifier(truth, 0.85, 3))

    assert decision.accepted and decision.outcome == "accepted" and not decision.pages
    assert decision.improvement == pytest.approx(0.08)
    assert decision.lower_bound is not None and 0.0 < decision.lower_bound < 0.08 < decision.upper_bound  # type: ignore[operator]
    assert decision.decided_on == "fixed"
    assert "vs champion v1" in decision.reason and "gate.confidence 0.95" in decision.reason


def test_a_clearly_worse_challenger_is_a_regression_that_pages() -> None:
    truth = _labels(600, 1)

    decision = _decide(_spec(), _classifier(truth, 0.85, 2), _classifier(truth, 0.93, 3))

    assert not decision.accepted and decision.outcome == "regressed" and decision.pages
    assert decision.improvement == pytest.approx(-0.08)
    assert decision.upper_bound is not None and decision.upper_bound < 0
    assert decision.reason.startswith("significantly worse")


def test_a_tiny_gain_on_a_small_holdout_is_not_better_and_does_not_page() -> None:
    truth = _labels(60, 1)

    decision = _decide(_spec(), _classifier(truth, 0.80, 2), _classifier(truth, 47 / 60, 3))

    assert decision.improvement == pytest.approx(1 / 60)
    assert not decision.accepted and decision.outcome == "not_better" and not decision.pages
    assert decision.lower_bound is not None and decision.lower_bound < 0
    assert decision.reason.startswith("not significantly better")


def test_the_same_gain_on_many_rows_is_accepted() -> None:
    truth = _labels(60_000, 1)

    decision = _decide(_spec(), _classifier(truth, 0.80, 2), _classifier(truth, 47 / 60, 3))

    assert decision.accepted
    assert decision.improvement == pytest.approx(1 / 60, abs=1e-4)


def test_identical_predictions_are_not_better() -> None:
    truth = _labels(600, 1)
    same = _classifier(truth, 0.9, 2)

    decision = _decide(_spec(), same, same)

    assert decision.outcome == "not_better" and decision.improvement == 0.0 and decision.lower_bound == 0.0


def test_a_significant_gain_below_the_minimum_improvement_is_not_better() -> None:
    truth = _labels(600, 1)

    decision = _decide(_spec(min_improvement=0.1), _classifier(truth, 0.93, 2), _classifier(truth, 0.85, 3))

    assert decision.outcome == "not_better" and not decision.pages
    assert "gate.min_improvement 0.1000" in decision.reason


def test_a_better_challenger_below_the_minimum_metric_is_a_regression() -> None:
    truth = _labels(600, 1)

    decision = _decide(_spec(min_metric=0.85), _classifier(truth, 0.84, 2), _classifier(truth, 0.70, 3))

    assert decision.outcome == "regressed"
    assert "gate.min_metric" in decision.reason


def test_a_champion_that_could_not_be_scored_blocks_promotion_and_pages() -> None:
    fixed = RowsCompared("fixed", DIGEST, _classifier(_labels(600, 1), 0.99, 2), None)

    decision = gate.decide(_spec(), replace(fixed, name="holdout"), fixed, None, "v3", "KeyError: 'risk_score'")

    assert decision.outcome == "incomparable" and decision.pages
    assert "v3" in decision.reason and "could not be scored" in decision.reason
    assert "KeyError: 'risk_score'" in decision.reason


@pytest.mark.parametrize(
    ("challenger_noise", "champion_noise", "outcome"),
    [
        (3.0, 3.5, "accepted"),  # lower error: better
        (3.5, 3.0, "regressed"),  # higher error: worse
        (3.45, 3.5, "not_better"),  # better, but not by more than the noise of 500 rows
    ],
)
def test_minimized_metrics_compare_lower_as_better(
    challenger_noise: float, champion_noise: float, outcome: str
) -> None:
    truth = np.random.default_rng(1).normal(50.0, 10.0, 500)
    challenger, champion = _regressor(truth, challenger_noise, 2), _regressor(truth, champion_noise, 3)

    decision = _decide(_spec("rmse"), challenger, champion)

    assert not decision.maximize
    assert decision.outcome == outcome
    assert decision.challenger is not None and decision.champion is not None
    assert decision.improvement == pytest.approx(decision.champion - decision.challenger)


@pytest.mark.parametrize(("noise", "accepted"), [(4.0, True), (6.0, False)])
def test_min_metric_is_a_ceiling_for_minimized_metrics(noise: float, accepted: bool) -> None:
    truth = np.random.default_rng(1).normal(50.0, 10.0, 2000)

    decision = _decide(_spec("rmse", min_metric=5.0), _regressor(truth, noise, 2), None, None)

    assert decision.accepted is accepted


def test_the_bootstrap_is_deterministic() -> None:
    truth = _labels(300, 1)
    challenger, champion = _classifier(truth, 0.85, 2), _classifier(truth, 0.82, 3)

    first, again = _decide(_spec(), challenger, champion), _decide(_spec(), challenger, champion)

    assert (first.lower_bound, first.upper_bound) == (again.lower_bound, again.upper_bound)


# -- recent rows decide, the fixed holdout guards -----------------------------------------------------------------


def test_a_challenger_better_on_recent_rows_but_slightly_worse_on_old_rows_is_promoted() -> None:
    old, new = _labels(400, 1), _labels(150, 2)

    decision = _decide(
        _spec(),
        _classifier(old, 0.80, 3),
        _classifier(old, 0.81, 4),
        recent=(_classifier(new, 0.76, 5), _classifier(new, 0.50, 6)),
    )

    assert decision.accepted and decision.decided_on == "recent"
    assert decision.recent is not None and decision.fixed is not None
    assert decision.recent.improvement == pytest.approx(0.26) and decision.recent.rows == 150
    assert decision.fixed.improvement == pytest.approx(-0.01) and decision.fixed.rows == 400
    assert decision.allowed_regression == pytest.approx(0.10 * 0.81)
    assert "150 recent rows" in decision.reason and "gate.max_regression 0.1" in decision.reason


def test_a_challenger_worse_on_recent_rows_is_rejected_however_good_on_old_rows() -> None:
    old, new = _labels(400, 1), _labels(150, 2)

    decision = _decide(
        _spec(),
        _classifier(old, 0.95, 3),
        _classifier(old, 0.80, 4),
        recent=(_classifier(new, 0.55, 5), _classifier(new, 0.75, 6)),
    )

    assert not decision.accepted and decision.outcome == "regressed" and decision.decided_on == "recent"


def test_a_challenger_that_forgets_the_fixed_holdout_is_rejected() -> None:
    old, new = _labels(400, 1), _labels(150, 2)

    decision = _decide(
        _spec(),
        _classifier(old, 0.60, 3),
        _classifier(old, 0.81, 4),
        recent=(_classifier(new, 0.76, 5), _classifier(new, 0.50, 6)),
    )

    assert decision.outcome == "regressed" and decision.pages
    assert decision.fixed_loss_lower_bound is not None and decision.allowed_regression is not None
    assert decision.fixed_loss_lower_bound > decision.allowed_regression
    assert "forgets the fixed holdout" in decision.reason and "gate.max_regression" in decision.reason


def test_a_loss_on_a_small_fixed_holdout_within_its_noise_does_not_veto_an_adaptation() -> None:
    old, new = _labels(60, 1), _labels(150, 2)

    decision = _decide(
        _spec(),
        _classifier(old, 0.70, 3),  # 0.12 below the champion's 0.82, more than the 0.082 allowed, on 60 rows only
        _classifier(old, 0.82, 4),
        recent=(_classifier(new, 0.80, 5), _classifier(new, 0.50, 6)),
    )

    assert decision.accepted and decision.decided_on == "recent", decision.reason
    assert "at least" in decision.reason


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_max_regression_is_relative_to_the_champions_score_whatever_the_units(scale: float) -> None:
    old = np.random.default_rng(1).normal(50.0, 10.0, 400) * scale
    new = np.random.default_rng(2).normal(80.0, 10.0, 150) * scale

    decision = _decide(
        _spec("rmse"),
        _regressor(old, 3.1 * scale, 3),
        _regressor(old, 3.0 * scale, 3),
        recent=(_regressor(new, 3.0 * scale, 4), _regressor(new, 9.0 * scale, 4)),
    )

    assert decision.accepted
    assert decision.fixed is not None and decision.fixed.champion is not None
    assert decision.allowed_regression == pytest.approx(0.10 * decision.fixed.champion)


def test_recent_rows_without_a_defined_metric_leave_the_decision_to_the_fixed_holdout() -> None:
    old, new = _labels(400, 1), np.zeros(20, dtype=np.int64)  # recent rows of one class: no ROC AUC there

    decision = _decide(
        _spec("roc_auc"),
        _classifier(old, 0.95, 3),
        _classifier(old, 0.80, 4),
        recent=(_classifier(new, 0.9, 5), _classifier(new, 0.9, 6)),
    )

    assert decision.accepted and decision.decided_on == "fixed"
    assert decision.recent is not None and decision.recent.improvement is None
    assert decision.recent.undefined == "the 20 rows hold one class only (0)"
    assert "roc_auc is undefined on the 20 recent rows" in decision.reason


def test_the_decision_carries_every_number_it_used() -> None:
    old, new = _labels(400, 1), _labels(150, 2)
    decision = _decide(
        _spec(),
        _classifier(old, 0.80, 3),
        _classifier(old, 0.81, 4),
        recent=(_classifier(new, 0.76, 5), _classifier(new, 0.50, 6)),
    )

    recorded = decision.as_dict()

    for key in ("outcome", "decided_on", "lower_bound", "upper_bound", "confidence", "bootstrap_samples"):
        assert recorded[key] is not None, key
    assert recorded["max_regression"] == 0.10 and recorded["min_improvement"] == 0.0
    assert recorded["fixed_loss_lower_bound"] is not None
    for part, rows, digest in (("fixed", 400, "f" * 64), ("recent", 150, "r" * 64)):
        assert recorded[part]["rows"] == rows and recorded[part]["digest"] == digest
        assert recorded[part]["challenger"] is not None and recorded[part]["champion"] is not None
    assert recorded["holdout_rows"] == 550 and recorded["holdout_digest"] == DIGEST


# -- real models -----------------------------------------------------------------------------------------------


def test_the_gate_prefers_the_stronger_of_two_real_models(project: Project, fraud_frame: pd.DataFrame) -> None:
    # A low floor, so the weak model is judged against the champion and not only against the minimum.
    strong_spec = load_spec("fraud", {"gate.min_metric": 0.5})
    weak_spec = load_spec("fraud", {"gate.min_metric": 0.5, "estimator.params": {"n_estimators": 2, "max_depth": 1}})
    split = split_holdout.fn(strong_spec, batch=make_batch(fraud_frame))
    strong = modeling.predict(fit_model.fn(strong_spec, split=split).model, split.holdout, strong_spec)
    weak = modeling.predict(fit_model.fn(weak_spec, split=split).model, split.holdout, weak_spec)

    def scores(challenger: Predictions, champion: Predictions, version: str) -> HoldoutScores:
        metrics = ChampionScore(version, modeling.score(champion, "roc_auc"))
        return HoldoutScores(challenger, modeling.score(challenger, "roc_auc"), metrics, champion)

    weak_against_strong = decide_promotion.fn(weak_spec, split=split, scores=scores(weak, strong, "strong"))
    strong_against_weak = decide_promotion.fn(strong_spec, split=split, scores=scores(strong, weak, "weak"))

    assert weak_against_strong.outcome == "regressed"
    assert "vs champion strong" in weak_against_strong.reason
    assert strong_against_weak.accepted
    assert strong_against_weak.challenger is not None and strong_against_weak.champion is not None
    assert strong_against_weak.improvement == pytest.approx(
        strong_against_weak.challenger - strong_against_weak.champion
    )


# -- unchanged: the champion's data, spec and code -------------------------------------------------------------

CODE = CodeVersion("c0ffee", False, None, "lock")


def _identity(**changes: Any) -> TrainingIdentity:
    return replace(TrainingIdentity("data", "spec", CODE), **changes)


def _champion_with(lineage: dict[str, Any]) -> Champion:
    open_registry().record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1", **lineage))
    return Champion("fraud", "v1", datetime.now(UTC))


def _lineage_of(identity: TrainingIdentity) -> dict[str, Any]:
    return {
        "data_fingerprint": identity.data_fingerprint,
        "spec_digest": identity.spec_digest,
        "code_version": identity.code.commit,
        "code_dirty": identity.code.dirty,
        "code_diff_digest": identity.code.diff_digest,
        "lock_digest": identity.code.lock_digest,
        "driftline_version": identity.driftline_version,
        "holdout_rows": 600,
        "holdout_digest": DIGEST,
    }


def test_a_run_with_the_champions_data_spec_and_code_is_unchanged(project: Project) -> None:
    champion = _champion_with(_lineage_of(_identity()))

    decision = check_unchanged.fn(load_spec("fraud"), champion=champion, identity=_identity())

    assert decision is not None and decision.outcome == "unchanged"
    assert not decision.accepted and not decision.pages
    assert decision.champion_version == "v1" and decision.holdout_digest == DIGEST
    assert "unchanged" in decision.reason and "v1 stays" in decision.reason


@pytest.mark.parametrize(
    "change",
    [
        {"data_fingerprint": "new data"},
        {"spec_digest": "other spec"},
        {"code": replace(CODE, commit="beef")},
        {"code": replace(CODE, lock_digest="other lock")},
        {"driftline_version": "0.0.0-other"},
    ],
)
def test_any_difference_from_the_champion_trains(project: Project, change: dict[str, Any]) -> None:
    champion = _champion_with(_lineage_of(_identity()))

    assert check_unchanged.fn(load_spec("fraud"), champion=champion, identity=_identity(**change)) is None


def test_a_champion_without_a_spec_digest_never_matches(project: Project) -> None:
    old = _lineage_of(_identity())
    del old["spec_digest"]

    assert check_unchanged.fn(load_spec("fraud"), champion=_champion_with(old), identity=_identity()) is None


def test_a_dirty_tree_matches_only_the_same_uncommitted_diff() -> None:
    dirty = replace(CODE, dirty=True, diff_digest="diff-1")

    assert dirty.same_as(replace(dirty))
    assert not dirty.same_as(replace(dirty, diff_digest="diff-2"))
    assert not dirty.same_as(CODE)
    assert not replace(dirty, diff_digest=None).same_as(replace(dirty, diff_digest=None))


def test_no_champion_is_never_unchanged(project: Project) -> None:
    assert check_unchanged.fn(load_spec("fraud"), champion=None, identity=_identity()) is None
