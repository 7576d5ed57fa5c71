"""W4's anchors: the same saved model behind a bare BentoML service that batches adaptively, and a no-op endpoint.

- ``BatchingService``: what a BentoML user would deploy around the model: ``@bentoml.api(batchable=True)``, so
  BentoML's adaptive batching gathers concurrent requests into one pass through the pipeline; no schema checks, no
  profiling. A request carries one row as a one-element list (``{"rows": [row]}``), the batching API's shape.
- ``CeilingService``: a no-op async endpoint with the same body (``{"row": row}``) and answer shape as driftline's
  ``/predict_one``: what BentoML's HTTP machinery alone costs, the ceiling no service can pass.

``BENCH_MODEL_TAG`` names the model. Run by ``bench/w4_serve.py`` with ``bentoml serve serve_anchors:<Service>``
(not named ``w4_*``: ``bench/run.py`` runs every ``w<N>_*.py`` as a workload).
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np


@bentoml.service(name="w4_batching", traffic={"timeout": 30})
class BatchingService:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(os.environ["BENCH_MODEL_TAG"])
        self.classes = [str(c) for c in self.model.classes_]

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=1000)
    def predict_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import pandas as pd

        probabilities = np.asarray(self.model.predict_proba(pd.DataFrame(rows)), dtype=float)
        predictions = np.asarray(self.model.classes_)[probabilities.argmax(axis=1)]
        return [
            {"prediction": p.item(), "probabilities": dict(zip(self.classes, row, strict=True))}
            for p, row in zip(predictions, probabilities.round(6).tolist(), strict=True)
        ]


@bentoml.service(name="w4_ceiling", traffic={"timeout": 30})
class CeilingService:
    @bentoml.api
    async def predict_one(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"model": "noop", "prediction": 0, "probabilities": {"0": 1.0, "1": 0.0}}
