"""Estimator wrappers that saved models reference by import path; scikit-learn is imported here, not in modeling."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class EncodedLabelClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fit an estimator on label codes (XGBoost needs 0..k-1) and answer in the original labels."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EncodedLabelClassifier:
        from sklearn.base import clone
        from sklearn.preprocessing import LabelEncoder

        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        extra = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **extra)
        return self

    def predict(self, X: Any) -> Any:
        return self.encoder_.inverse_transform(np.asarray(self.estimator_.predict(X)).astype(int))

    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)
