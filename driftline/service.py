"""The BentoML service for a model version: ``bentoml serve driftline.service:ModelService``.

It loads the version named by ``DRIFTLINE_SERVE_TAG`` (``name:version``), or the champion of
``DRIFTLINE_SERVE_MODEL`` from the registry, and checks every request against the version's training schema: a bad
row gets a 400 naming the row, the field and the rule, never a 500. ``driftline serve MODEL`` sets this up.

This module is the service's entry point, so it imports BentoML at import time; nothing else imports it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from driftline import libs
from driftline.errors import StoreError
from driftline.requests import RequestError, to_frame

bentoml = libs.bentoml()


def resolve_tag() -> str:
    """The model tag to serve, from DRIFTLINE_SERVE_TAG or the champion of DRIFTLINE_SERVE_MODEL."""
    tag = os.environ.get("DRIFTLINE_SERVE_TAG")
    if tag:
        return tag
    model = os.environ.get("DRIFTLINE_SERVE_MODEL")
    if not model:
        raise StoreError("set DRIFTLINE_SERVE_TAG (name:version) or DRIFTLINE_SERVE_MODEL (serve its champion)")
    from driftline.registry import open_registry

    registry = open_registry()
    champion = registry.champion(model)
    if champion is None:
        raise StoreError(f"{model}: no champion to serve (run `driftline train {model}`)")
    return registry.version(model, champion.version).tag


def _plain(values: Any) -> list[Any]:
    return [value.item() if isinstance(value, np.generic) else value for value in np.asarray(values).tolist()]


@bentoml.service(name="driftline", traffic={"timeout": 30})
class ModelService:
    """Predictions from one model version, with the training schema enforced on every request."""

    def __init__(self) -> None:
        self.tag = resolve_tag()
        stored = bentoml.models.get(self.tag)
        self.model = bentoml.sklearn.load_model(self.tag)
        self.schema: dict[str, Any] = stored.custom_objects["schema"]
        self.classes = list(self.schema.get("classes") or [])

    def _frame(self, rows: list[dict[str, Any]]) -> Any:
        try:
            return to_frame(rows, self.schema)
        except RequestError as error:
            raise bentoml.exceptions.InvalidArgument(str(error)) from None

    @bentoml.api
    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Predict for a batch of rows; classifiers also return each class's probability."""
        return self._predict(rows)

    def _predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        # Plain method: an API method calling another @bentoml.api method would go back through the dispatcher.
        frame = self._frame(rows)
        result: dict[str, Any] = {"model": self.tag, "predictions": _plain(self.model.predict(frame))}
        if self.classes:
            result["classes"] = self.classes
            result["probabilities"] = np.asarray(self.model.predict_proba(frame)).round(6).tolist()
        return result

    @bentoml.api
    def predict_one(self, row: dict[str, Any]) -> dict[str, Any]:
        """Predict for one row."""
        batch = self._predict([row])
        single = {"model": self.tag, "prediction": batch["predictions"][0]}
        if self.classes:
            single["probabilities"] = dict(zip(map(str, self.classes), batch["probabilities"][0], strict=True))
        return single

    @bentoml.api(route="/model")
    def model_info(self) -> dict[str, Any]:
        """The served model's tag and input schema (readiness itself is BentoML's /readyz)."""
        return {"model": self.tag, "schema": self.schema}
