"""The baseline for ``bench/serve.py``: a bare BentoML service around the same saved model, nothing else.

No schema checks, no profiling, no auth, no batching: one row in, one pass through the pipeline, the prediction and
class probabilities out, the same answer shape as driftline's ``/predict_one``. ``BENCH_MODEL_TAG`` names the model.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import pandas as pd


@bentoml.service(name="bare", traffic={"timeout": 30})
class BareService:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(os.environ["BENCH_MODEL_TAG"])

    @bentoml.api
    def predict_one(self, row: dict[str, Any]) -> dict[str, Any]:
        # One pass through the pipeline: the prediction is the most probable class.
        probabilities = self.model.predict_proba(pd.DataFrame([row]))[0]
        prediction = self.model.classes_[probabilities.argmax()]
        return {
            "prediction": prediction.item() if hasattr(prediction, "item") else prediction,
            "probabilities": dict(zip(map(str, self.model.classes_), probabilities.round(6).tolist(), strict=True)),
        }
