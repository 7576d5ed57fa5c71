"""Features, estimators, the holdout split and metrics: plain functions the flows and the service share.

No Prefect here. A fitted model is a scikit-learn Pipeline (preprocessing + estimator), so it is saved, loaded
and served the same way whatever the estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline.errors import SpecError, TrainingError
from driftline.spec import ModelSpec

_ESTIMATOR_PATHS = {
    ("classification", "xgboost"): "xgboost:XGBClassifier",
    ("classification", "logistic_regression"): "sklearn.linear_model:LogisticRegression",
    ("classification", "random_forest"): "sklearn.ensemble:RandomForestClassifier",
    ("classification", "gradient_boosting"): "sklearn.ensemble:HistGradientBoostingClassifier",
    ("regression", "xgboost"): "xgboost:XGBRegressor",
    ("regression", "random_forest"): "sklearn.ensemble:RandomForestRegressor",
    ("regression", "gradient_boosting"): "sklearn.ensemble:HistGradientBoostingRegressor",
    ("regression", "linear_regression"): "sklearn.linear_model:LinearRegression",
    ("regression", "ridge"): "sklearn.linear_model:Ridge",
}


@dataclass(frozen=True)
class ColumnSchema:
    """What the model was trained on for one input column; the service enforces it on requests."""

    name: str
    kind: str  # "numeric" or "categorical"
    dtype: str
    nullable: bool
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingSchema:
    columns: tuple[ColumnSchema, ...]
    target: str
    classes: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "classes": [_plain(c) for c in self.classes],
            "columns": [column.__dict__ | {"categories": list(column.categories)} for column in self.columns],
        }


@dataclass(frozen=True)
class Split:
    """The training rows and the fixed holdout; champion and challenger are scored on the same holdout."""

    train: pd.DataFrame = field(repr=False)
    holdout: pd.DataFrame = field(repr=False)
    holdout_digest: str
    seed: int
    fraction: float

    @property
    def sizes(self) -> tuple[int, int]:
        return len(self.train), len(self.holdout)


@dataclass(frozen=True)
class Metrics:
    """Every metric of the model's task on one holdout; ``primary`` is the spec's gate metric."""

    values: dict[str, float]
    primary: str
    rows: int

    @property
    def score(self) -> float:
        return self.values[self.primary]


def training_schema(frame: pd.DataFrame, spec: ModelSpec) -> TrainingSchema:
    columns = []
    for name in spec.features.numeric:
        columns.append(ColumnSchema(name, "numeric", str(frame[name].dtype), bool(frame[name].isna().any())))
    for name in spec.features.categorical:
        values = frame[name].dropna().astype(str).unique()
        columns.append(
            ColumnSchema(
                name, "categorical", str(frame[name].dtype), bool(frame[name].isna().any()), tuple(sorted(values))
            )
        )
    classes: tuple[Any, ...] = ()
    if spec.task == "classification":
        classes = tuple(_plain(c) for c in sorted(frame[spec.target].dropna().unique()))
    return TrainingSchema(columns=tuple(columns), target=spec.target, classes=classes)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def estimator(spec: ModelSpec) -> Any:
    """Instantiate the spec's estimator, naming the parameter if the estimator does not accept it."""
    import importlib

    module_name, class_name = _ESTIMATOR_PATHS[(spec.task, spec.estimator.kind)].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    params = dict(spec.estimator.params)
    accepted = cls().get_params()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise SpecError(
            f"{spec.label}: estimator.params.{unknown[0]}: {class_name} has no such parameter "
            f"(accepted: {', '.join(sorted(accepted))})"
        )
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = spec.estimator.seed
    if spec.estimator.kind == "xgboost":
        params.setdefault("n_jobs", 1)
    try:
        instance = cls(**params)
    except (TypeError, ValueError) as error:
        raise SpecError(f"{spec.label}: estimator.params: {class_name} rejects them: {error}") from None
    if spec.task == "classification" and spec.estimator.kind == "xgboost":
        from driftline.estimators import EncodedLabelClassifier

        return EncodedLabelClassifier(instance)
    return instance


def pipeline(spec: ModelSpec) -> Any:
    """Preprocessing (impute + scale numerics, impute + one-hot categoricals) followed by the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    transformers = []
    if spec.features.numeric:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numeric, list(spec.features.numeric)))
    if spec.features.categorical:
        categorical = Pipeline(
            [
                ("as_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.features.categorical)))
    return Pipeline([("features", ColumnTransformer(transformers, remainder="drop")), ("model", estimator(spec))])


def as_text(X: Any) -> pd.DataFrame:
    """Cast categorical columns to text (missing values kept), so ints, bools and strings encode alike."""
    frame = pd.DataFrame(X)
    return frame.astype(object).map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def split_holdout(frame: pd.DataFrame, spec: ModelSpec) -> Split:
    """Split by a seeded hash of each row's content: the same row always lands on the same side.

    So the holdout is fixed for given data, and a row held out from the champion's data stays held out when the
    data grows, so champion and challenger are compared on rows neither was trained on.
    """
    from driftline.data import fingerprint

    in_holdout = holdout_mask(frame, spec)
    train, holdout = frame[~in_holdout].reset_index(drop=True), frame[in_holdout].reset_index(drop=True)
    if len(train) == 0 or len(holdout) == 0:
        raise TrainingError(
            f"{spec.label}: split.holdout_fraction {spec.split.holdout_fraction} leaves "
            f"{len(train)} training and {len(holdout)} holdout rows of {len(frame)}; need both non-empty"
        )
    if spec.task == "classification":
        for name, part in (("training", train), ("holdout", holdout)):
            if part[spec.target].nunique() < 2:
                raise TrainingError(
                    f"{spec.label}: the {name} rows hold one class of '{spec.target}' only "
                    f"({len(part)} rows); more data or a different split.holdout_fraction is needed"
                )
    return Split(
        train=train,
        holdout=holdout,
        holdout_digest=fingerprint(holdout),
        seed=spec.split.seed,
        fraction=spec.split.holdout_fraction,
    )


def holdout_mask(frame: pd.DataFrame, spec: ModelSpec) -> Any:
    """True for the rows the seeded hash puts in the holdout; a row's side depends on that row alone."""
    key = spec.split.key or [c for c in spec.columns if c in frame.columns]
    rows = pd.util.hash_pandas_object(frame[key], index=False).to_numpy()
    # Mix the seed into every row hash (pandas' hash_key only salts text columns), then re-hash to spread it.
    salt = np.uint64((spec.split.seed * 0x9E3779B97F4A7C15) % 2**64)
    hashes = pd.util.hash_array(rows ^ salt)
    return (hashes % np.uint64(10_000)) < np.uint64(round(spec.split.holdout_fraction * 10_000))


def check_target(frame: pd.DataFrame, spec: ModelSpec, origin: str) -> None:
    missing = int(frame[spec.target].isna().sum())
    if missing:
        raise TrainingError(f"{origin}: target column '{spec.target}' has {missing} missing values")


def fit(frame: pd.DataFrame, spec: ModelSpec) -> Any:
    """Fit the spec's pipeline on the training rows."""
    model = pipeline(spec)
    try:
        model.fit(frame[spec.features.columns], frame[spec.target])
    except ValueError as error:
        raise TrainingError(f"{spec.label}: fitting {spec.estimator.kind} failed: {error}") from error
    return model


def positive_label(model: Any, spec: ModelSpec) -> Any:
    classes = list(model.classes_)
    if spec.positive_label is not None:
        matches = [c for c in classes if str(c) == str(spec.positive_label)]
        if not matches:
            raise SpecError(f"{spec.label}: positive_label {spec.positive_label!r} is not a class (classes: {classes})")
        return matches[0]
    return classes[-1]


def evaluate(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> Metrics:
    """Score a fitted model on rows (the holdout): ROC AUC, F1, accuracy, log loss; or RMSE, MAE, R²."""
    from sklearn import metrics as skm

    X, y = frame[spec.features.columns], frame[spec.target]
    values: dict[str, float] = {}
    if spec.task == "classification":
        predicted = model.predict(X)
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        values["accuracy"] = skm.accuracy_score(y, predicted)
        if len(classes) == 2:
            positive = positive_label(model, spec)
            column = classes.index(positive)
            values["roc_auc"] = skm.roc_auc_score(y == positive, proba[:, column])
            values["f1"] = skm.f1_score(y, predicted, pos_label=positive)
        else:
            values["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
            values["f1"] = skm.f1_score(y, predicted, average="macro")
        values["log_loss"] = skm.log_loss(y, proba, labels=classes)
    else:
        predicted = model.predict(X)
        values["rmse"] = math.sqrt(skm.mean_squared_error(y, predicted))
        values["mae"] = skm.mean_absolute_error(y, predicted)
        values["r2"] = skm.r2_score(y, predicted)
    return Metrics(values={k: float(v) for k, v in values.items()}, primary=spec.metric.name, rows=len(frame))
