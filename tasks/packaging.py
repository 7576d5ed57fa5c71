"""Package a model version into the BentoML model store with its lineage."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline.loop import store
from driftline.loop.lineage import Lineage
from driftline.serving import servability
from driftline.serving.servability import ServabilityReport
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.training import FittedModel


@task(name="package-model", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def package_model(fitted: FittedModel, spec: ModelSpec, lineage: Lineage) -> str:
    """Save the fitted pipeline to the BentoML model store with labels and lineage; return its tag."""
    return store.save(
        spec.name,
        fitted.model,
        classifier=spec.task == "classification",
        labels={
            "task": spec.task,
            "estimator": spec.estimator.kind,
            "data-fingerprint": lineage.data_fingerprint[:16],
        },
        lineage=lineage.as_dict(),
        schema=fitted.schema.as_dict(),
    )


@task(name="check-servability", cache_policy=NO_CACHE)
def check_servability(tag: str, fitted: FittedModel, holdout: pd.DataFrame, spec: ModelSpec) -> ServabilityReport:
    """Serve the packaged version on a free loopback port; it must answer holdout rows like the model in process."""
    return servability.check(tag, fitted.model, holdout, spec, get_settings().state_dir / "logs")
