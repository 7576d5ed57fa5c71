"""Package a model version into the BentoML model store with its lineage, and check that it serves."""

from __future__ import annotations

import pandas as pd

from driftline.loop import training
from driftline.loop.lineage import Lineage
from driftline.loop.training import FittedModel, Packaged
from driftline.serving import servability
from driftline.serving.servability import ServabilityReport
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import MODEL_STORE, step


@step("package-model", MODEL_STORE)
def package_model(spec: ModelSpec, *, fitted: FittedModel, lineage: Lineage) -> Packaged:
    """Save the fitted pipeline to the BentoML model store with labels and lineage; return its tag and lineage."""
    return training.package(fitted, spec, lineage)


@step("check-servability")
def check_servability(spec: ModelSpec, *, tag: str, fitted: FittedModel, holdout: pd.DataFrame) -> ServabilityReport:
    """Serve the packaged version on a free loopback port; it must answer holdout rows like the model in process."""
    return servability.check(tag, fitted.model, holdout, spec, get_settings().state_dir / "logs")
