"""Compatibility: models saved before the package had folders pickle ``driftline.estimators``; the code is in
:mod:`driftline.loop.estimators`."""

from driftline.loop.estimators import EncodedLabelClassifier

__all__ = ["EncodedLabelClassifier"]
