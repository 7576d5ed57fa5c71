"""Split deterministically and fit the spec's pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline import modeling
from driftline.data import Batch
from driftline.modeling import Split, TrainingSchema
from driftline.settings import get_settings
from driftline.spec import ModelSpec


@dataclass(frozen=True)
class FittedModel:
    """A fitted pipeline and the schema of the rows it was trained on."""

    model: Any = field(repr=False)
    schema: TrainingSchema
    estimator: str
    train_rows: int


@dataclass(frozen=True)
class Holdout:
    """The stored holdout: where it is and which rows (digest) it holds."""

    path: str
    digest: str
    rows: int


@task(name="split-holdout", cache_policy=NO_CACHE)
def split_holdout(batch: Batch, spec: ModelSpec) -> Split:
    """Split rows into training and a fixed holdout by a seeded hash of each row."""
    modeling.check_target(batch.frame, spec, batch.origin)
    return modeling.split_holdout(batch.frame, spec)


@task(name="store-holdout", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def store_holdout(split: Split, spec: ModelSpec) -> Holdout:
    """Keep the holdout rows as Parquet, named by their digest, so any gate decision can be replayed."""
    folder = get_settings().holdouts_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split.holdout_digest[:16]}.parquet"
    if not path.exists():
        split.holdout.to_parquet(path, index=False)
    return Holdout(path=str(path), digest=split.holdout_digest, rows=len(split.holdout))


@task(name="fit-model", cache_policy=NO_CACHE)
def fit_model(split: Split, spec: ModelSpec) -> FittedModel:
    """Fit the spec's preprocessing and estimator on the training rows."""
    model = modeling.fit(split.train, spec)
    return FittedModel(
        model=model,
        schema=modeling.training_schema(split.train, spec),
        estimator=spec.estimator.kind,
        train_rows=len(split.train),
    )


@task(name="read-holdout", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def read_holdout(model: str, version: str) -> pd.DataFrame:
    """The holdout a version was judged on (from its lineage): fixed rows to compare later models on."""
    from driftline.registry import open_registry

    return pd.read_parquet(open_registry().version(model, version).lineage["holdout_path"])
