"""The service's fast path answers as the fitted scikit-learn pipeline does, for every estimator a spec may name."""

from __future__ import annotations

import math
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.loop import modeling
from driftline.serving.fastpath import CompiledModel, NotCompiled, compile_model
from driftline.spec import EstimatorKind, ModelSpec, load_spec

SMALL = {  # small models: the point is equality, not quality
    "xgboost": {"n_estimators": 20, "max_depth": 3},
    "random_forest": {"n_estimators": 10, "max_depth": 4},
    "gradient_boosting": {"max_iter": 20},
    "logistic_regression": {"max_iter": 500},
}
CLASSIFIERS = ["xgboost", "logistic_regression", "random_forest", "gradient_boosting"]
REGRESSORS = ["xgboost", "random_forest", "gradient_boosting", "linear_regression", "ridge"]


def test_every_estimator_kind_is_covered_here() -> None:
    assert set(CLASSIFIERS) | set(REGRESSORS) == set(get_args(EstimatorKind))


def _with_gaps(frame: pd.DataFrame, seed: int, share: float = 0.1) -> pd.DataFrame:
    """Missing values in every feature column, and a category training never saw in each categorical column."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    for name in ("amount", "distance_km", "hour", "merchant_category", "country"):
        frame[name] = frame[name].astype(object).where(rng.random(len(frame)) > share, None)
    return frame


def _rows(spec: ModelSpec, seed: int) -> list[dict[str, Any]]:
    """Rows as the service receives them: plain values, None for missing, some categories unseen in training."""
    frame = _with_gaps(generate(300, seed=seed), seed)
    rows = []
    for i, row in enumerate(frame[spec.features.columns].to_dict(orient="records")):
        clean = {key: (value.item() if isinstance(value, np.generic) else value) for key, value in row.items()}
        clean = {key: None if isinstance(v, float) and math.isnan(v) else v for key, v in clean.items()}
        if i % 7 == 0:
            clean["country"] = "ZZ-never-seen"
        if i % 11 == 0:
            clean["merchant_category"] = "unseen-category"
        rows.append(clean)
    return rows


def _fitted(spec: ModelSpec) -> Any:
    frame = _with_gaps(generate(1500, seed=3), seed=4)
    for name in ("amount", "distance_km", "hour"):
        frame[name] = frame[name].astype(float)
    return modeling.fit(frame, spec)


def _classifier(kind: str, target: str = "is_fraud") -> ModelSpec:
    overrides: dict[str, Any] = {"estimator.kind": kind, "estimator.params": SMALL.get(kind, {}), "target": target}
    if target != "is_fraud":
        overrides |= {"positive_label": None, "features.categorical": ["country"]}
    return load_spec("fraud", overrides)


def _compiled(model: Any) -> CompiledModel:
    compiled = compile_model(model)
    assert isinstance(compiled, CompiledModel), compiled
    return compiled


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_a_classifier_answers_as_its_pipeline_with_missing_values_and_unseen_categories(kind: str) -> None:
    spec = _classifier(kind)
    model = _fitted(spec)
    rows = _rows(spec, seed=8)
    frame = pd.DataFrame(rows, columns=spec.features.columns)

    fast = _compiled(model).predict_proba(rows)

    expected = model.predict_proba(frame)
    assert fast.shape == expected.shape
    assert np.max(np.abs(fast - expected)) <= 1e-6
    labels = np.asarray(model.classes_)[fast.argmax(axis=1)]
    assert (labels == model.predict(frame)).all()


@pytest.mark.parametrize("kind", ["xgboost", "logistic_regression"])
def test_a_multiclass_classifier_with_text_labels_answers_as_its_pipeline(kind: str) -> None:
    spec = _classifier(kind, target="merchant_category")
    frame = generate(1500, seed=3)
    model = modeling.fit(frame, spec)
    rows = _rows(spec, seed=9)

    fast = _compiled(model).predict_proba(rows)

    expected = model.predict_proba(pd.DataFrame(rows, columns=spec.features.columns))
    assert fast.shape[1] == len(model.classes_) > 2
    assert np.max(np.abs(fast - expected)) <= 1e-6
    assert list(np.asarray(model.classes_)[fast.argmax(axis=1)]) == list(
        model.predict(pd.DataFrame(rows, columns=spec.features.columns))
    )


@pytest.mark.parametrize("kind", REGRESSORS)
def test_a_regressor_answers_as_its_pipeline(kind: str) -> None:
    spec = load_spec(
        "fraud",
        {
            "task": "regression",
            "target": "tx_count_24h",
            "positive_label": None,
            "features.numeric": ["amount", "card_present", "hour", "distance_km"],
            "estimator.kind": kind,
            "estimator.params": SMALL.get(kind, {}) if kind != "logistic_regression" else {},
            "metric": {"name": "rmse", "direction": "minimize"},
            "gate": {"min_metric": 100.0, "min_improvement": 0.0},
        },
    )
    model = _fitted(spec)
    rows = _rows(spec, seed=10)

    fast = _compiled(model).predict(rows)

    expected = model.predict(pd.DataFrame(rows, columns=spec.features.columns))
    assert np.max(np.abs(fast - np.asarray(expected, dtype=float))) <= 1e-6


def test_one_row_answers_as_a_batch_does() -> None:
    spec = _classifier("xgboost")
    compiled = _compiled(_fitted(spec))
    rows = _rows(spec, seed=12)[:20]

    together = compiled.predict_proba(rows)
    alone = np.vstack([compiled.predict_proba([row]) for row in rows])

    assert np.array_equal(together, alone)


def test_a_step_it_does_not_know_is_named_and_not_compiled() -> None:
    from sklearn.preprocessing import MinMaxScaler

    spec = _classifier("logistic_regression")
    model = _fitted(spec)
    model.steps[0][1].transformers_[0][1].steps[1] = ("scale", MinMaxScaler().fit([[0.0] * 4, [1.0] * 4]))

    result = compile_model(model)

    assert isinstance(result, NotCompiled)
    assert "features.numeric" in result.reason and "MinMaxScaler" in result.reason


def test_a_model_that_is_not_a_pipeline_is_not_compiled() -> None:
    from sklearn.linear_model import LogisticRegression

    result = compile_model(LogisticRegression())

    assert isinstance(result, NotCompiled)
    assert "LogisticRegression" in result.reason
