"""The service's fast path: a fitted pipeline's preprocessing compiled to plain numpy, the estimator called directly.

A scikit-learn ``Pipeline`` of a ``ColumnTransformer`` costs about 5 ms a call whatever the rows (a DataFrame
built, each column selected, validated and concatenated); a single row's actual arithmetic is microseconds. So
:func:`compile_model` reads the fitted steps driftline builds (``driftline.loop.modeling.pipeline``: median or
constant imputers, a standard scaler, ``as_text`` and a one-hot encoder that ignores unknown categories) into
arrays, and :class:`CompiledModel` applies them to rows (dicts, as the service validates them) with numpy. XGBoost
answers through its booster's ``inplace_predict``; every other estimator through its own ``predict_proba`` or
``predict`` on the same matrix the pipeline would hand it.

A step it does not know, or knows in a configuration it does not reproduce, is not guessed at: ``compile_model``
returns a :class:`NotCompiled` naming the step, and the service serves through the pipeline (and logs why). The
answers equal the pipeline's (tests/serving/test_fastpath.py; the servability check compares them over HTTP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MISSING = object()


@dataclass(frozen=True)
class NotCompiled:
    """Why a model is served through its scikit-learn pipeline rather than the fast path."""

    reason: str


@dataclass(frozen=True)
class NumericBlock:
    """Columns imputed with a constant per column, then standardised: ``(x - mean) / scale``."""

    columns: tuple[str, ...]
    fill: np.ndarray = field(repr=False)
    mean: np.ndarray | None = field(repr=False)
    scale: np.ndarray | None = field(repr=False)

    def transform(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        values = np.array(
            [[_number(row.get(name)) for name in self.columns] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(self.columns))
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, self.fill, values)
        if self.mean is not None:
            values -= self.mean
        if self.scale is not None:
            values /= self.scale
        return values


@dataclass(frozen=True)
class CategoricalBlock:
    """Columns as text, missing values as ``fill``, one-hot over the training categories (unknown: all zeros)."""

    columns: tuple[str, ...]
    fill: str
    positions: tuple[dict[str, int], ...] = field(repr=False)  # per column: category -> output offset
    width: int

    def transform(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        out = np.zeros((len(rows), self.width), dtype=np.float64)
        for i, row in enumerate(rows):
            for name, position in zip(self.columns, self.positions, strict=True):
                offset = position.get(_text(row.get(name), self.fill))
                if offset is not None:
                    out[i, offset] = 1.0
        return out


@dataclass(frozen=True)
class CompiledModel:
    """A fitted pipeline as numpy blocks and its estimator; ``classes`` is empty for a regressor."""

    blocks: tuple[NumericBlock | CategoricalBlock, ...]
    estimator: Any = field(repr=False)
    classes: tuple[Any, ...]
    booster: Any = field(default=None, repr=False)  # XGBoost: predict through the booster in place
    iteration_range: tuple[int, int] = (0, 0)
    missing: float = math.nan

    def features(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """The matrix the pipeline's last step would receive for ``rows``."""
        parts = [block.transform(rows) for block in self.blocks]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def predict_proba(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """Each class's probability, columns in ``classes`` order (as the pipeline's ``predict_proba``)."""
        features = self.features(rows)
        if self.booster is None:
            return np.asarray(self.estimator.predict_proba(features))
        scores = np.asarray(self._inplace(features))
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim == 1:  # binary: the positive class's probability, as XGBClassifier.predict_proba
            return np.vstack((1 - scores, scores)).T
        return scores

    def predict(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """A regressor's predictions (a classifier's are the argmax of ``predict_proba``)."""
        features = self.features(rows)
        if self.booster is None:
            return np.asarray(self.estimator.predict(features))
        return np.asarray(self._inplace(features))

    def _inplace(self, features: np.ndarray) -> Any:
        return self.booster.inplace_predict(
            features, iteration_range=self.iteration_range, missing=self.missing, validate_features=False
        )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _text(value: Any, fill: str) -> str:
    """What ``as_text`` then a constant imputer make of a value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fill
    return str(value)


def compile_model(model: Any) -> CompiledModel | NotCompiled:
    """The fast path for a fitted driftline pipeline, or why there is none."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2:
        return NotCompiled(f"{type(model).__name__} is not a two-step (features, model) pipeline")
    (_, columns), (_, estimator) = steps
    blocks = _compile_columns(columns)
    if isinstance(blocks, NotCompiled):
        return blocks
    return _with_estimator(tuple(blocks), estimator)


def _compile_columns(transformer: Any) -> list[NumericBlock | CategoricalBlock] | NotCompiled:
    from sklearn.compose import ColumnTransformer

    if type(transformer) is not ColumnTransformer:
        return NotCompiled(f"features: {type(transformer).__name__} is not a ColumnTransformer")
    if getattr(transformer, "sparse_output_", False):
        return NotCompiled("features: sparse output")
    blocks: list[NumericBlock | CategoricalBlock] = []
    for name, step, columns in transformer.transformers_:
        if name == "remainder":
            if step != "drop":
                return NotCompiled(f"features: remainder={step!r} (only 'drop' compiles)")
            continue
        if step == "drop" or len(columns) == 0:
            continue
        if not all(isinstance(column, str) for column in columns):
            return NotCompiled(f"features.{name}: columns selected by position or mask")
        block = _compile_block(name, step, tuple(columns))
        if isinstance(block, NotCompiled):
            return block
        blocks.append(block)
    if not blocks:
        return NotCompiled("features: no transformer")
    return blocks


def _compile_block(name: str, step: Any, columns: tuple[str, ...]) -> NumericBlock | CategoricalBlock | NotCompiled:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    parts = [part for _, part in step.steps] if hasattr(step, "steps") else [step]
    kinds = [type(part) for part in parts]
    if kinds == [SimpleImputer, StandardScaler]:
        imputer, scaler = parts
        if not _numeric_imputer(imputer):
            return NotCompiled(f"features.{name}: SimpleImputer(strategy={imputer.strategy!r}) with these options")
        mean = None if not scaler.with_mean else np.asarray(scaler.mean_, dtype=np.float64)
        scale = None if not scaler.with_std else np.asarray(scaler.scale_, dtype=np.float64)
        return NumericBlock(columns, np.asarray(imputer.statistics_, dtype=np.float64), mean, scale)
    if kinds == [FunctionTransformer, SimpleImputer, OneHotEncoder]:
        from driftline.loop.modeling import as_text

        function, imputer, encoder = parts
        if function.func is not as_text or function.kw_args or function.inverse_func is not None:
            return NotCompiled(f"features.{name}: FunctionTransformer({function.func!r}) is not as_text")
        if imputer.strategy != "constant" or not isinstance(imputer.fill_value, str) or imputer.add_indicator:
            return NotCompiled(f"features.{name}: SimpleImputer(strategy={imputer.strategy!r}) with these options")
        if not _plain_encoder(encoder):
            return NotCompiled(f"features.{name}: OneHotEncoder with drop, infrequent categories or sparse output")
        positions, offset = [], 0
        for categories in encoder.categories_:
            if not all(isinstance(value, str) for value in categories):
                return NotCompiled(f"features.{name}: OneHotEncoder categories that are not text")
            positions.append({value: offset + index for index, value in enumerate(categories)})
            offset += len(categories)
        return CategoricalBlock(columns, imputer.fill_value, tuple(positions), offset)
    return NotCompiled(f"features.{name}: steps {[kind.__name__ for kind in kinds]} have no fast path")


def _numeric_imputer(imputer: Any) -> bool:
    missing = imputer.missing_values
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    return (
        isinstance(missing, float)
        and math.isnan(missing)
        and not imputer.add_indicator
        and not np.isnan(statistics).any()  # an all-missing training column is dropped by the imputer: not here
    )


def _plain_encoder(encoder: Any) -> bool:
    return (
        encoder.handle_unknown == "ignore"
        and encoder.drop_idx_ is None
        and not getattr(encoder, "_infrequent_enabled", False)
        and not encoder.sparse_output
    )


def _with_estimator(blocks: tuple[NumericBlock | CategoricalBlock, ...], estimator: Any) -> CompiledModel | NotCompiled:
    from driftline.loop.estimators import EncodedLabelClassifier

    classes: tuple[Any, ...] = tuple(getattr(estimator, "classes_", ()))
    inner = estimator.estimator_ if isinstance(estimator, EncodedLabelClassifier) else estimator
    module = type(inner).__module__.split(".")[0]
    if module == "xgboost":
        booster = inner.get_booster()
        try:  # what XGBModel.predict uses: the best iteration of early stopping, else every tree
            iteration_range = (0, int(inner.best_iteration) + 1)
        except AttributeError:
            iteration_range = (0, 0)
        if inner.booster == "gblinear":
            iteration_range = (0, 0)
        if getattr(inner, "objective", None) not in ("binary:logistic", "multi:softprob", "reg:squarederror", None):
            return NotCompiled(f"model: XGBoost objective {inner.objective!r} has no fast path")
        missing = float(inner.missing) if inner.missing is not None else math.nan
        return CompiledModel(blocks, estimator, classes, booster, iteration_range, missing)
    if module != "sklearn":
        return NotCompiled(f"model: {type(inner).__name__} from {module} has no fast path")
    return CompiledModel(blocks, estimator, classes)
