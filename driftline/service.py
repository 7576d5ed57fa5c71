"""Compatibility: Bentos built before the package had folders name ``driftline.service:ModelService``; the service
is :mod:`driftline.serving.service`. Importing it reads the serve configuration from the environment."""

from driftline.serving.service import ModelService

__all__ = ["ModelService"]
