"""Scoring on the holdout: every estimator learns the fraud pattern, labels of any type, regression metrics, and the
champion scored on the challenger's rows."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline import store
from driftline.examples.fraud import generate
from driftline.registry import Champion, open_registry
from driftline.spec import load_spec, parse_spec
from tasks.evaluation import evaluate_champion, evaluate_model
from tasks.training import fit_model, split_holdout
from tests.conftest import Project
from tests.tasks.conftest import Trained, make_batch


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
    split = split_holdout.fn(make_batch(fraud_frame), spec)

    metrics = evaluate_model.fn(fit_model.fn(split, spec).model, split, spec)

    assert set(metrics.values) == {"roc_auc", "f1", "accuracy", "log_loss"}
    assert metrics.primary == "roc_auc"
    assert metrics.rows == len(split.holdout)
    assert metrics.score > 0.8
    # Better than always answering the majority class.
    assert metrics.values["log_loss"] < 0.69


def test_string_labels_work_with_xgboost(project: Project, fraud_frame: pd.DataFrame) -> None:
    params = {"estimator.params": {"n_estimators": 100, "max_depth": 3}}
    numeric_spec = load_spec("fraud", params)
    numeric_split = split_holdout.fn(make_batch(fraud_frame), numeric_spec)
    numeric = evaluate_model.fn(fit_model.fn(numeric_split, numeric_spec).model, numeric_split, numeric_spec)
    # The same rows with text labels (the target is part of the split key, so relabel after splitting).
    labels = {1: "fraud", 0: "ok"}
    split = replace(
        numeric_split,
        train=numeric_split.train.assign(is_fraud=numeric_split.train["is_fraud"].map(labels)),
        holdout=numeric_split.holdout.assign(is_fraud=numeric_split.holdout["is_fraud"].map(labels)),
    )
    spec = load_spec("fraud", {**params, "positive_label": "fraud"})

    fitted = fit_model.fn(split, spec)
    metrics = evaluate_model.fn(fitted.model, split, spec)

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
    split = split_holdout.fn(make_batch(_fees(1500, seed=31)), spec)
    fitted = fit_model.fn(split, spec)

    metrics = evaluate_model.fn(fitted.model, split, spec)

    assert set(metrics.values) == {"rmse", "mae", "r2"}
    assert metrics.primary == "rmse"
    errors = split.holdout["fee"] - fitted.model.predict(split.holdout[spec.features.columns])
    assert metrics.score == pytest.approx(math.sqrt(float((errors**2).mean())))
    assert metrics.values["mae"] == pytest.approx(float(errors.abs().mean()))
    assert metrics.values["mae"] <= metrics.values["rmse"]
    assert metrics.values["rmse"] < 0.7  # the noise is 0.5
    assert metrics.values["r2"] > 0.9


def test_no_champion_is_scored_as_none(project: Project, trained_fraud: Trained) -> None:
    score = evaluate_champion.fn(None, trained_fraud.split, trained_fraud.spec)

    assert score.version is None
    assert score.metrics is None
    assert score.error is None


def _register(trained: Trained, model: Any) -> Champion:
    tag = store.save(
        trained.spec.name, model, classifier=True, labels={}, lineage={}, schema=trained.fitted.schema.as_dict()
    )
    version = tag.split(":", 1)[1]
    open_registry().record_version(trained.spec.name, version, tag, {})
    return Champion(trained.spec.name, version, pd.Timestamp.now(tz="UTC").to_pydatetime())


def test_the_champion_is_scored_on_the_challengers_holdout(project: Project, trained_fraud: Trained) -> None:
    champion = _register(trained_fraud, trained_fraud.fitted.model)

    score = evaluate_champion.fn(champion, trained_fraud.split, trained_fraud.spec)

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
    old_split = split_holdout.fn(make_batch(frame), spec)
    champion = _register(trained_fraud, fit_model.fn(old_split, spec).model)

    score = evaluate_champion.fn(champion, trained_fraud.split, trained_fraud.spec)

    assert score.version == champion.version
    assert score.metrics is None
    assert score.error is not None and "risk_score" in score.error
