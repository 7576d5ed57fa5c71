"""Compatibility: models saved before the package had folders pickle ``driftline.modeling.as_text``; the code is in
:mod:`driftline.loop.modeling`."""

from driftline.loop.modeling import as_text

__all__ = ["as_text"]
