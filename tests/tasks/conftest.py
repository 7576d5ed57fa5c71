"""Fixtures for the task tests: a fraud model fitted on generated data, with the lineage the train flow would build."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from driftline.loop.data import Batch, fingerprint
from driftline.loop.lineage import Lineage
from driftline.loop.modeling import Metrics, Split
from driftline.loop.training import FittedModel
from driftline.spec import ModelSpec, load_spec
from tests.conftest import Project


def make_batch(frame: pd.DataFrame, origin: str = "generated") -> Batch:
    return Batch(origin=origin, frame=frame, fingerprint=fingerprint(frame))


@dataclass(frozen=True)
class Trained:
    """A fitted fraud challenger and everything the train flow knows about it before packaging."""

    spec: ModelSpec
    batch: Batch
    split: Split
    fitted: FittedModel
    metrics: Metrics

    def lineage(self, reason: str = "test") -> Lineage:
        return Lineage(
            model=self.spec.name,
            reason=reason,
            data_fingerprint=self.batch.fingerprint,
            data_sources=[self.batch.origin],
            rows=self.batch.rows,
            suite=self.spec.suite_path.name,
            suite_digest="0" * 64,
            profile_path="memory://profiles/fraud/reference/x.bin",
            holdout_path="memory://holdouts/fraud/x.parquet",
            holdout_digest=self.split.holdout_digest,
            holdout_rows=len(self.split.holdout),
            split_seed=self.split.seed,
            holdout_fraction=self.split.fraction,
            estimator=self.spec.estimator.kind,
            params=self.spec.estimator.params,
            seed=self.spec.estimator.seed,
            metrics=self.metrics.values,
            gate={"accepted": True},
            schema=self.fitted.schema.as_dict(),
            code_version=None,
            code_dirty=None,
            lock_digest=None,
            flow_run_id=None,
        )


@pytest.fixture
def trained_fraud(project: Project, fraud_frame: pd.DataFrame) -> Trained:
    from tasks.evaluation import evaluate_model
    from tasks.training import fit_model, split_holdout

    spec = load_spec("fraud", {"estimator.params.n_estimators": 50})
    batch = make_batch(fraud_frame, "fraud-3000")
    split = split_holdout.fn(spec, batch=batch)
    fitted = fit_model.fn(spec, split=split)
    return Trained(spec, batch, split, fitted, evaluate_model.fn(spec, model=fitted.model, split=split))
