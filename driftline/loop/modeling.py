"""Features, estimators, the holdout split and metrics: plain functions the flows and the service share.

No Prefect here. A fitted model is a scikit-learn Pipeline (preprocessing + estimator), so it is saved, loaded
and served the same way whatever the estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from driftline.errors import SpecError, StoreError, TrainingError
from driftline.libs import lazy_module
from driftline.spec import METRICS_BY_TASK, ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    np = lazy_module("numpy")
    pd = lazy_module("pandas")

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
    """The rows a model was trained on: its input columns in order, the target, and a classifier's classes.

    Saved with the model as ``as_dict()`` (``custom_objects["schema"]``); :meth:`from_dict` reads it back, also
    from models saved by earlier driftline versions, which stored the same dict.
    """

    columns: tuple[ColumnSchema, ...]
    target: str
    classes: tuple[Any, ...] = ()

    @property
    def names(self) -> list[str]:
        """The input columns' names, in training order."""
        return [column.name for column in self.columns]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "classes": [_plain(c) for c in self.classes],
            "columns": [column.__dict__ | {"categories": list(column.categories)} for column in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSchema:
        """The schema saved as :meth:`as_dict`; a StoreError saying what it lacks if it is not one."""
        try:
            columns = tuple(
                ColumnSchema(
                    name=str(column["name"]),
                    kind=str(column["kind"]),
                    dtype=str(column["dtype"]),
                    nullable=bool(column["nullable"]),
                    categories=tuple(str(value) for value in column.get("categories") or ()),
                )
                for column in data["columns"]
            )
            return cls(columns=columns, target=str(data["target"]), classes=tuple(data.get("classes") or ()))
        except (KeyError, TypeError) as error:
            raise StoreError(
                f"training schema: expected the keys target, classes and columns (each with name, kind, dtype, "
                f"nullable, categories); found {sorted(data) if isinstance(data, dict) else type(data).__name__} "
                f"({type(error).__name__}: {error})"
            ) from None


@dataclass(frozen=True)
class Split:
    """The training rows and the held-out rows; champion and challenger are scored on the same held-out rows.

    ``holdout_recent`` marks the held-out rows that came from the recent window's batches (True) rather than from
    the source (False): the gate scores both models on each part. It is None when the run has no window.
    """

    train: pd.DataFrame = field(repr=False)
    holdout: pd.DataFrame = field(repr=False)
    holdout_digest: str
    seed: int
    fraction: float
    holdout_recent: Any = field(default=None, repr=False, compare=False)
    train_recent: Any = field(default=None, repr=False, compare=False)
    fingerprint: str = ""  # the split batch's: with the split's own fields, it names the training rows (a cache key)

    @property
    def recent_mask(self) -> np.ndarray:
        if self.holdout_recent is None:
            return np.zeros(len(self.holdout), dtype=bool)
        return np.asarray(self.holdout_recent, dtype=bool)

    @property
    def sizes(self) -> tuple[int, int]:
        return len(self.train), len(self.holdout)


@dataclass(frozen=True)
class Metrics:
    """Every metric of the model's task on some rows; ``primary`` is the spec's gate metric.

    ``values`` holds the metrics defined on these rows; ``undefined`` names the others and says why (ROC AUC of a
    binary model on rows of one class, for instance), so a missing number is never a NaN.
    """

    values: dict[str, float]
    primary: str
    rows: int
    undefined: dict[str, str] = field(default_factory=dict)

    @property
    def score(self) -> float | None:
        return self.values.get(self.primary)


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on some rows, with the true values: every metric and resample is computed from this.

    ``proba`` has one column per class in ``classes`` order (classification only); ``positive`` is the positive
    class of a binary model.
    """

    task: str
    truth: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    proba: np.ndarray | None = field(default=None, repr=False)
    classes: tuple[Any, ...] = ()
    positive: Any = None

    @property
    def rows(self) -> int:
        return len(self.truth)

    def subset(self, mask: np.ndarray) -> Predictions:
        """The same model's predictions on the rows where ``mask`` is True."""
        return Predictions(
            task=self.task,
            truth=self.truth[mask],
            predicted=self.predicted[mask],
            proba=None if self.proba is None else self.proba[mask],
            classes=self.classes,
            positive=self.positive,
        )


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
    if spec.estimator.kind == "xgboost" and "n_jobs" not in params:
        # Fit on every core the process may use: XGBoost's hist method gives the same booster for the same seed
        # and thread count, run after run (tests/tasks/test_training.py). fit() sets it back to 1 afterwards.
        params["n_jobs"] = fit_threads()
    try:
        instance = cls(**params)
    except (TypeError, ValueError) as error:
        raise SpecError(f"{spec.label}: estimator.params: {class_name} rejects them: {error}") from None
    if spec.task == "classification" and spec.estimator.kind == "xgboost":
        from driftline.loop.estimators import EncodedLabelClassifier

        return EncodedLabelClassifier(instance)
    return instance


def fit_threads() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    from driftline.loop.data import cores

    return cores()


def _predict_on_one_thread(model: Any, spec: ModelSpec) -> None:
    """Set a fitted XGBoost model back to one thread, unless the spec chose: a served request is one row or a few,
    where threads cost more than they save, and the service's workers already use the cores."""
    if spec.estimator.kind != "xgboost" or "n_jobs" in spec.estimator.params:
        return
    fitted = model.named_steps["model"]
    booster_owner = getattr(fitted, "estimator_", fitted)  # EncodedLabelClassifier wraps the classifier
    booster_owner.set_params(n_jobs=1)
    if hasattr(fitted, "estimator"):
        fitted.estimator.set_params(n_jobs=1)


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


def split_holdout(frame: pd.DataFrame, spec: ModelSpec, recent_rows: int = 0) -> Split:
    """Split by a seeded hash of each row's content: the same row always lands on the same side.

    So the holdout is fixed for given data, and a row held out from the champion's data stays held out when the
    data grows, so champion and challenger are compared on rows neither was trained on. The last ``recent_rows``
    rows of ``frame`` are the recent window's; the split marks which held-out rows they gave.
    """
    from driftline.loop.data import fingerprint

    in_holdout = holdout_mask(frame, spec)
    from_recent = np.arange(len(frame)) >= len(frame) - recent_rows
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
        holdout_recent=from_recent[np.asarray(in_holdout, dtype=bool)] if recent_rows else None,
        train_recent=from_recent[~np.asarray(in_holdout, dtype=bool)] if recent_rows else None,
    )


def recency_weights(split: Split, spec: ModelSpec) -> Any:
    """Row weights that give the recent window ``retrain.window_weight`` of the training weight, or None.

    After drift, the recent rows say how the world is now; weighted like any other row, a window of five small
    batches is outvoted by years of history and the retrained model barely moves. A window already larger than its
    share keeps plain weights: history is never weighted down below one.
    """
    share = spec.retrain.window_weight
    if split.train_recent is None or share <= 0:
        return None
    recent = np.asarray(split.train_recent, dtype=bool)
    count, total = int(recent.sum()), len(recent)
    if count == 0 or count == total or count / total >= share:
        return None
    weights = np.ones(total)
    weights[recent] = share * (total - count) / ((1 - share) * count)
    return weights


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


def fit(frame: pd.DataFrame, spec: ModelSpec, weights: Any = None) -> Any:
    """Fit the spec's pipeline on the training rows (``weights``: one per row, e.g. :func:`recency_weights`)."""
    model = pipeline(spec)
    extra = {} if weights is None else {"model__sample_weight": np.asarray(weights, dtype=float)}
    try:
        model.fit(frame[spec.features.columns], frame[spec.target], **extra)
    except ValueError as error:
        raise TrainingError(f"{spec.label}: fitting {spec.estimator.kind} failed: {error}") from error
    _predict_on_one_thread(model, spec)
    return model


def positive_label(model: Any, spec: ModelSpec) -> Any:
    classes = list(model.classes_)
    if spec.positive_label is not None:
        matches = [c for c in classes if str(c) == str(spec.positive_label)]
        if not matches:
            raise SpecError(f"{spec.label}: positive_label {spec.positive_label!r} is not a class (classes: {classes})")
        return matches[0]
    return classes[-1]


def predict(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> Predictions:
    """Predict labels (and class probabilities) for rows, kept with their true values."""
    X = frame[spec.features.columns]
    truth = frame[spec.target].to_numpy()
    if spec.task != "classification":
        return Predictions("regression", truth.astype(float), np.asarray(model.predict(X), dtype=float))
    classes = tuple(_plain(c) for c in model.classes_)
    positive = positive_label(model, spec) if len(classes) == 2 else None
    proba = np.asarray(model.predict_proba(X), dtype=float)
    # XGBoost returns float32 probabilities: in float64 their rows miss 1 by more than log loss tolerates.
    proba = proba / proba.sum(axis=1, keepdims=True)
    return Predictions(
        "classification",
        truth,
        np.asarray(model.predict(X)),
        proba,
        classes,
        _plain(positive) if positive is not None else None,
    )


def evaluate(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> Metrics:
    """Score a fitted model on rows (the holdout): ROC AUC, F1, accuracy, log loss; or RMSE, MAE, R²."""
    return score(predict(model, frame, spec), spec.metric.name)


def score(predictions: Predictions, primary: str) -> Metrics:
    """Every metric of the task on these predictions, defined on any rows or named as undefined with the reason.

    The rules, so a window that lacks a class still gets numbers (and no library warnings):

    - ROC AUC, binary: needs both classes among the true values, else undefined. Multi-class: one-vs-rest AUC of
      each class present among the true values, averaged without weights (macro); needs two classes present. With
      every class present this is scikit-learn's ``multi_class="ovr"`` macro AUC.
    - F1, binary: of the positive class; undefined when the rows hold no positive and none is predicted.
      Multi-class: macro average over the classes that are true or predicted on these rows (a class absent from
      both has no F1 and is left out, rather than counted as 0).
    - Log loss over all the model's classes (``labels=``), so it is defined whichever classes are present.
    - Accuracy, RMSE and MAE are defined on any non-empty rows; R² needs a target that is not constant.
    """
    values: dict[str, float] = {}
    undefined: dict[str, str] = {}
    for name in METRICS_BY_TASK[predictions.task]:
        value, why = metric_value(predictions, name)
        if value is None:
            undefined[name] = why or "undefined"
        else:
            values[name] = value
    return Metrics(values=values, primary=primary, rows=predictions.rows, undefined=undefined)


def metric_value(predictions: Predictions, metric: str) -> tuple[float | None, str | None]:
    """One metric on these predictions (rules in ``score``): its value, or None and why it is undefined."""
    from sklearn import metrics as skm

    y, predicted, rows = predictions.truth, predictions.predicted, predictions.rows
    if rows == 0:
        return None, "no rows"
    if metric == "accuracy":
        return float(np.mean(y == predicted)), None
    if metric in ("rmse", "mae", "r2"):
        errors = y - predicted
        if metric == "rmse":
            return math.sqrt(float(np.mean(errors**2))), None
        if metric == "mae":
            return float(np.mean(np.abs(errors))), None
        spread = float(np.sum((y - y.mean()) ** 2))
        if spread <= 0:
            return None, f"the target is constant on the {rows} rows"
        return 1.0 - float(np.sum(errors**2)) / spread, None
    assert predictions.proba is not None
    classes = list(predictions.classes)
    binary = len(classes) == 2
    if metric == "log_loss":
        return float(skm.log_loss(y, predictions.proba, labels=classes)), None
    if metric == "f1":
        if binary:
            f1 = _f1(*_confusion(y, predicted, predictions.positive))
            if f1 is None:
                return None, f"no true or predicted {predictions.positive!r} among the {rows} rows"
            return f1, None
        defined = [f for f in (_f1(*_confusion(y, predicted, c)) for c in classes) if f is not None]
        return (float(np.mean(defined)), None) if defined else (None, f"no class true or predicted in {rows} rows")
    if metric == "roc_auc":
        present = [c for c in classes if bool(np.any(y == c))]
        if len(present) < 2:
            return None, f"the {rows} rows hold one class only ({present[0]!r})" if present else "no known class"
        if binary:
            positive = predictions.positive
            return float(skm.roc_auc_score(y == positive, predictions.proba[:, classes.index(positive)])), None
        per_class = [skm.roc_auc_score(y == c, predictions.proba[:, classes.index(c)]) for c in present]
        return float(np.mean(per_class)), None
    raise ValueError(f"unknown metric {metric!r}")


def _confusion(y: np.ndarray, predicted: np.ndarray, label: Any) -> tuple[int, int, int]:
    true, guessed = y == label, predicted == label
    return int(np.sum(true & guessed)), int(np.sum(~true & guessed)), int(np.sum(true & ~guessed))


def _f1(tp: int, fp: int, fn: int) -> float | None:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else None


# -- resampling: a metric under many weightings of the rows, for the gate's paired bootstrap ---------------------

# Above this many unique scores, ROC AUC is resampled on score quantile bins; the gate corrects the (tiny) binning
# bias with the exact AUC, so only the spread comes from the bins.
AUC_BINS = 256


@dataclass(frozen=True)
class RowStatistics:
    """Per-group sums from which a metric is computed under any weighting of the groups (one group = rows)."""

    metric: str
    sums: np.ndarray = field(repr=False)  # (groups, statistics)
    classes: int = 1  # multi-class AUC and F1: statistics per class, side by side


def row_statistics(predictions: Predictions, metric: str, groups: np.ndarray, n_groups: int) -> RowStatistics:
    """Sum each row's contribution to ``metric`` within its group; ``metric_of_sums`` turns weighted sums back."""
    y, predicted = predictions.truth, predictions.predicted
    ones = np.ones(len(y))

    def summed(*columns: np.ndarray) -> list[np.ndarray]:
        return [np.bincount(groups, weights=column, minlength=n_groups) for column in columns]

    blocks: list[np.ndarray]
    classes = 1
    if metric == "accuracy":
        blocks = summed(ones, (y == predicted).astype(float))
    elif metric == "log_loss":
        assert predictions.proba is not None
        proba = predictions.proba / predictions.proba.sum(axis=1, keepdims=True)
        index = pd.Index(list(predictions.classes)).get_indexer(y)
        eps = np.finfo(proba.dtype).eps
        blocks = summed(ones, -np.log(np.clip(proba[np.arange(len(y)), index], eps, 1.0)))
    elif metric in ("rmse", "mae", "r2"):
        errors = y - predicted
        if metric == "rmse":
            blocks = summed(ones, errors**2)
        elif metric == "mae":
            blocks = summed(ones, np.abs(errors))
        else:
            blocks = summed(ones, y, y**2, errors**2)
    elif metric == "f1":
        labels = [predictions.positive] if len(predictions.classes) == 2 else list(predictions.classes)
        classes = len(labels)
        blocks = []
        for label in labels:
            true, guessed = y == label, predicted == label
            blocks += summed(
                (true & guessed).astype(float), (~true & guessed).astype(float), (true & ~guessed).astype(float)
            )
    elif metric == "roc_auc":
        assert predictions.proba is not None
        labels = [predictions.positive] if len(predictions.classes) == 2 else list(predictions.classes)
        classes = len(labels)
        blocks = []
        for label in labels:
            cells = groups * AUC_BINS + _score_bins(predictions.proba[:, list(predictions.classes).index(label)])
            positive = (y == label).astype(float)
            for weights in (positive, 1.0 - positive):
                histogram = np.bincount(cells, weights=weights, minlength=n_groups * AUC_BINS)
                blocks += list(histogram.reshape(n_groups, AUC_BINS).T)
    else:
        raise ValueError(f"no resampling rule for metric {metric!r}")
    sums = np.stack(blocks, axis=1)
    return RowStatistics(metric, sums, classes)


def _score_bins(scores: np.ndarray) -> np.ndarray:
    """Rank scores into at most AUC_BINS ordered bins: exact ranks when they are few, quantile bins otherwise."""
    ordered = np.sort(scores)
    unique = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    if len(unique) <= AUC_BINS:
        return np.searchsorted(unique, scores)
    edges = np.unique(ordered[(np.arange(1, AUC_BINS) * len(ordered)) // AUC_BINS])
    return np.searchsorted(edges, scores, side="right")


def metric_of_sums(statistics: RowStatistics, weights: np.ndarray) -> np.ndarray:
    """The metric under each row of ``weights`` (resamples x groups); NaN where a resample leaves it undefined."""
    totals = weights @ statistics.sums  # (resamples, statistics)
    metric = statistics.metric
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in ("accuracy", "log_loss", "mae"):
            return np.where(totals[:, 0] > 0, totals[:, 1] / totals[:, 0], np.nan)
        if metric == "rmse":
            return np.where(totals[:, 0] > 0, np.sqrt(totals[:, 1] / totals[:, 0]), np.nan)
        if metric == "r2":
            count, total, squares, errors = totals.T
            spread = squares - np.where(count > 0, total**2 / count, np.nan)
            return np.where(spread > 1e-12 * np.maximum(squares, 1.0), 1.0 - errors / spread, np.nan)
        per_class = totals.reshape(len(totals), statistics.classes, -1)
        if metric == "f1":
            tp, fp, fn = per_class[:, :, 0], per_class[:, :, 1], per_class[:, :, 2]
            denominator = 2 * tp + fp + fn
            f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
        else:
            positive, negative = per_class[:, :, :AUC_BINS], per_class[:, :, AUC_BINS:]
            below = np.cumsum(negative, axis=2) - negative  # negatives scored strictly lower, per bin
            pairs = positive.sum(axis=2) * negative.sum(axis=2)
            wins = np.sum(positive * (below + 0.5 * negative), axis=2)
            f1 = np.where(pairs > 0, wins / pairs, np.nan)  # AUC per class
        defined = ~np.isnan(f1)
        counted = defined.sum(axis=1)
        return np.where(counted > 0, np.where(defined, f1, 0.0).sum(axis=1) / np.maximum(counted, 1), np.nan)
