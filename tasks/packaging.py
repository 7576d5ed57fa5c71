"""Package a model version into the BentoML model store with its lineage, and check that it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftline.loop import training
from driftline.loop.lineage import Lineage
from driftline.loop.training import FittedModel, Packaged
from driftline.serving import servability
from driftline.serving.servability import PendingService, ServabilityReport
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from tasks.options import MODEL_STORE, step

if TYPE_CHECKING:
    import pandas as pd
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun, State


@step("package-model", MODEL_STORE)
def package_model(spec: ModelSpec, *, fitted: FittedModel, lineage: Lineage) -> Packaged:
    """Save the fitted pipeline to the BentoML model store with labels and lineage; return its tag and lineage."""
    return training.package(fitted, spec, lineage)


@step("start-servability-service")
def start_servability_service(spec: ModelSpec) -> PendingService:
    """Start the service the servability check will use, so it imports everything while the model trains."""
    return servability.start(get_settings().state_dir / "logs", owner=_flow_run_id())


@step("check-servability")
def check_servability(
    spec: ModelSpec,
    *,
    tag: str,
    fitted: FittedModel,
    holdout: pd.DataFrame,
    service: PendingService | None = None,
) -> ServabilityReport:
    """Serve the packaged version on a free loopback port; it must answer holdout rows like the model in process."""
    return servability.check(tag, fitted.model, holdout, spec, get_settings().state_dir / "logs", service)


def stop_servability_services(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """Stop the servability service the run started and no check consumed (a flow hook, for every final state)."""
    servability.stop_all(owner=str(flow_run.id))


# The flow hooks (on every final state) that stop the service a train started ahead if no check consumed it.
STOP_SERVICES: list[Any] = [stop_servability_services]


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
