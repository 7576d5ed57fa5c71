"""Scoring on the holdout: every estimator learns the fraud pattern, labels of any type, regression metrics, and the
champion scored on the challenger's rows."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from driftline.examples.fraud import generate
from driftline.loop import modeling, store
from driftline.loop.evaluation import ChampionScore
from driftline.registry import Champion, open_registry
from driftline.spec import load_spec, parse_spec
from tasks.evaluation import evaluate_champion, evaluate_model, score_holdout
from tasks.training import fit_model, split_holdout
from tests.conftest import Project, Trained, make_batch, make_lineage


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("xgboost", {"n_estimators": 100, "max_depth": 3}),
        ("logistic_regression", {"max_iter": 1000}),
        ("random_forest", {"n_estimators": 100, "min_samples_leaf": 5}),
    ],
)
def test_every_classifier_learns_the_fraud_pattern(
    project: Project, fraud_frame: pd.DataFrame, kind: str, params: dict[str, Any]
) -> None:
    spec = load_spec("fraud", {"estimator.kind": kind, "estimator.params": params})
    split = split_holdout.fn(spec, batch=make_batch(fraud_frame))

    metrics = evaluate_model.fn(spec, model=fit_model.fn(spec, split=split).model, split=split)

    assert set(metrics.values) == {"roc_auc", "f1", "accuracy", "log_loss"}
    assert metrics.primary == "roc_auc"
    assert metrics.rows == len(split.holdout)
    assert metrics.score > 0.8
    # Better than always answering the majority class.
    assert metrics.values["log_loss"] < 0.69


def test_string_labels_work_with_xgboost(project: Project, fraud_frame: pd.DataFrame) -> None:
    params = {"estimator.params": {"n_estimators": 100, "max_depth": 3}}
    numeric_spec = load_spec("fraud", params)
    numeric_split = split_holdout.fn(numeric_spec, batch=make_batch(fraud_frame))
    numeric = evaluate_model.fn(
        numeric_spec, model=fit_model.fn(numeric_spec, split=numeric_split).model, split=numeric_split
    )
    # The same rows with text labels (the target is part of the split key, so relabel after splitting).
    labels = {1: "fraud", 0: "ok"}
    split = replace(
        numeric_split,
        train=numeric_split.train.assign(is_fraud=numeric_split.train["is_fraud"].map(labels)),
        holdout=numeric_split.holdout.assign(is_fraud=numeric_split.holdout["is_fraud"].map(labels)),
    )
    spec = load_spec("fraud", {**params, "positive_label": "fraud"})

    fitted = fit_model.fn(spec, split=split)
    metrics = evaluate_model.fn(spec, model=fitted.model, split=split)

    assert fitted.schema.classes == ("fraud", "ok")
    assert set(fitted.model.predict(split.holdout[spec.features.columns])) <= {"fraud", "ok"}
    # "fraud" sorts first, so scoring the wrong probability column would give 1 - AUC.
    assert metrics.score > 0.8
    assert abs(metrics.score - numeric.score) < 0.02
    assert metrics.values["f1"] == pytest.approx(numeric.values["f1"], abs=0.1)


def _regression_spec() -> Any:
    return parse_spec(
        {
            "name": "fees",
            "task": "regression",
            "target": "fee",
            "source": {"path": "data/fees/*.parquet"},
            "features": {"numeric": ["amount", "card_present", "distance_km"], "categorical": ["country"]},
            "estimator": {"kind": "ridge", "params": {"alpha": 1.0}},
            "metric": {"name": "rmse"},
        }
    )


def _fees(rows: int, seed: int) -> pd.DataFrame:
    frame = generate(rows, seed=seed)
    noise = np.random.default_rng(seed).normal(0.0, 0.5, size=rows)
    frame["fee"] = 0.5 + 0.03 * frame["amount"] + 1.5 * (frame["country"] == "BR") + noise
    return frame


def test_a_regression_spec_gives_rmse_mae_and_r2(project: Project) -> None:
    spec = _regression_spec()
    split = split_holdout.fn(spec, batch=make_batch(_fees(1500, seed=31)))
    fitted = fit_model.fn(spec, split=split)

    metrics = evaluate_model.fn(spec, model=fitted.model, split=split)

    assert set(metrics.values) == {"rmse", "mae", "r2"}
    assert metrics.primary == "rmse"
    errors = split.holdout["fee"] - fitted.model.predict(split.holdout[spec.features.columns])
    assert metrics.score == pytest.approx(math.sqrt(float((errors**2).mean())))
    assert metrics.values["mae"] == pytest.approx(float(errors.abs().mean()))
    assert metrics.values["mae"] <= metrics.values["rmse"]
    assert metrics.values["rmse"] < 0.7  # the noise is 0.5
    assert metrics.values["r2"] > 0.9


def test_no_champion_is_scored_as_none(project: Project, trained_fraud: Trained) -> None:
    score = evaluate_champion.fn(trained_fraud.spec, champion=None, split=trained_fraud.split)

    assert score.version is None
    assert score.metrics is None
    assert score.error is None


def _register(trained: Trained, model: Any) -> Champion:
    tag = store.save(
        trained.spec.name, model, classifier=True, labels={}, lineage={}, schema=trained.fitted.schema.as_dict()
    )
    version = tag.split(":", 1)[1]
    lineage = make_lineage(trained.spec.name, version, model_files=store.digests(tag))
    open_registry().record_version(trained.spec.name, version, tag, lineage)
    return Champion(trained.spec.name, version, pd.Timestamp.now(tz="UTC").to_pydatetime())


def test_the_champion_is_scored_on_the_challengers_holdout(project: Project, trained_fraud: Trained) -> None:
    champion = _register(trained_fraud, trained_fraud.fitted.model)

    score = evaluate_champion.fn(trained_fraud.spec, champion=champion, split=trained_fraud.split)

    assert score.version == champion.version
    assert score.error is None
    assert score.metrics is not None
    assert score.metrics.values == pytest.approx(trained_fraud.metrics.values)
    assert score.metrics.rows == len(trained_fraud.split.holdout)


def test_a_champion_that_cannot_read_the_holdout_is_reported_not_raised(
    project: Project, trained_fraud: Trained
) -> None:
    # A champion trained on a feature the current data no longer has.
    spec = load_spec("fraud", {"features.numeric": ["amount", "hour", "risk_score"], "estimator.params": {}})
    frame = trained_fraud.batch.frame.assign(risk_score=np.linspace(0.0, 1.0, trained_fraud.batch.rows))
    old_split = split_holdout.fn(spec, batch=make_batch(frame))
    champion = _register(trained_fraud, fit_model.fn(spec, split=old_split).model)

    score = evaluate_champion.fn(trained_fraud.spec, champion=champion, split=trained_fraud.split)

    assert score.version == champion.version
    assert score.metrics is None
    assert score.error is not None and "risk_score" in score.error


# -- metrics on every window: a window that lacks a class still gets numbers, and no library warning ------------


def _three_classes(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    label = np.digitize(x + rng.normal(0.0, 0.3, rows), [-0.5, 0.5])  # 0, 1, 2 by the size of x
    return pd.DataFrame({"x": x, "z": rng.normal(size=rows), "label": np.array(["low", "mid", "high"])[label]})


def _three_class_spec(metric: str = "roc_auc") -> Any:
    return parse_spec(
        {
            "name": "levels",
            "task": "classification",
            "target": "label",
            "source": {"path": "data/levels/*.parquet"},
            "features": {"numeric": ["x", "z"]},
            "estimator": {"kind": "logistic_regression", "params": {"max_iter": 500}},
            "metric": {"name": metric},
        }
    )


def test_a_three_class_model_scored_on_rows_lacking_a_class_has_defined_metrics(project: Project) -> None:
    # pytest turns warnings into errors here: scikit-learn's "only one class"/"y_pred contains classes not in
    # y_true" warnings would fail this test.
    spec = _three_class_spec()
    frame = _three_classes(600, seed=3)
    model = fit_model.fn(spec, split=split_holdout.fn(spec, batch=make_batch(frame))).model
    window = _three_classes(300, seed=4).query("label != 'high'")

    metrics = modeling.evaluate(model, window, spec)

    assert set(metrics.values) == {"roc_auc", "f1", "accuracy", "log_loss"} and metrics.undefined == {}
    assert all(math.isfinite(value) for value in metrics.values.values())
    predictions = modeling.predict(model, window, spec)
    present = ["low", "mid"]
    per_class = [
        roc_auc_score(predictions.truth == c, predictions.proba[:, list(predictions.classes).index(c)])  # type: ignore[index]
        for c in present
    ]
    assert metrics.values["roc_auc"] == pytest.approx(np.mean(per_class))  # one-vs-rest over the classes present
    assert metrics.score is not None and metrics.score > 0.8


def test_a_window_of_one_class_has_no_roc_auc_rather_than_nan(project: Project) -> None:
    spec = _three_class_spec()
    model = fit_model.fn(spec, split=split_holdout.fn(spec, batch=make_batch(_three_classes(600, seed=3)))).model
    window = _three_classes(300, seed=4).query("label == 'mid'")

    metrics = modeling.evaluate(model, window, spec)

    assert "roc_auc" not in metrics.values and metrics.score is None
    assert metrics.undefined["roc_auc"] == f"the {len(window)} rows hold one class only ('mid')"
    assert 0.0 <= metrics.values["accuracy"] <= 1.0 and math.isfinite(metrics.values["log_loss"])


def test_binary_metrics_on_rows_of_one_class_are_named_as_undefined(project: Project, trained_fraud: Trained) -> None:
    holdout = trained_fraud.split.holdout
    legit = holdout[holdout["is_fraud"] == 0]

    metrics = modeling.evaluate(trained_fraud.fitted.model, legit, trained_fraud.spec)

    assert metrics.score is None and "one class only" in metrics.undefined["roc_auc"]
    assert set(metrics.values) >= {"accuracy", "log_loss"}


def test_macro_f1_leaves_out_a_class_neither_true_nor_predicted() -> None:
    truth = np.array(["a", "a", "b", "b"])
    predicted = np.array(["a", "b", "b", "b"])
    proba = np.full((4, 3), 1 / 3)
    predictions = modeling.Predictions("classification", truth, predicted, proba, ("a", "b", "c"))

    metrics = modeling.score(predictions, "f1")

    # a: 2·1/(2·1+0+1) = 2/3; b: 2·2/(2·2+1+0) = 4/5; c is absent from both and left out (not counted as 0).
    assert metrics.values["f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_score_holdout_predicts_both_models_on_the_same_rows(project: Project, trained_fraud: Trained) -> None:
    champion = _register(trained_fraud, trained_fraud.fitted.model)

    scores = score_holdout.fn(
        trained_fraud.spec, model=trained_fraud.fitted.model, champion=champion, split=trained_fraud.split
    )

    assert scores.champion.version == champion.version and scores.champion.error is None
    assert scores.champion_predictions is not None
    assert scores.champion_predictions.rows == scores.challenger.rows == len(trained_fraud.split.holdout)
    assert scores.metrics.values == pytest.approx(trained_fraud.metrics.values)
    assert scores.champion.metrics is not None
    assert scores.champion.metrics.values == pytest.approx(trained_fraud.metrics.values)


def test_score_holdout_without_a_champion(project: Project, trained_fraud: Trained) -> None:
    scores = score_holdout.fn(
        trained_fraud.spec, model=trained_fraud.fitted.model, champion=None, split=trained_fraud.split
    )

    assert scores.champion == ChampionScore(None, None) and scores.champion_predictions is None
