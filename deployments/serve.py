"""Turn model specs into Prefect deployments: retrain (nightly cron + the drift trigger) and monitor (interval).

Deployments are named ``retrain/<model>@<project>`` and ``monitor/<model>@<project>`` and tagged
``driftline-project:<project>``, so two projects serving a model of the same name on one server keep their own.
``python -m deployments`` (or ``driftline serve-flows``) serves them all from one process for local use.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from driftline.oncall import events
from driftline.spec import ModelSpec, list_models, load_spec


def drift_trigger(spec: ModelSpec, project: str | None = None) -> Any:
    """Start the model's retrain deployment on each ``driftline.drift.detected`` event about that model.

    Only events of this project's model match. Parameters are rendered from the event (Jinja, to native types): the
    model, the drifted batch's fingerprint and the reason. A burst of events gives a burst of runs; the retrain
    flow's lease lets one train at a time and records the rest as skipped, with the reason.
    """
    from prefect.events import DeploymentEventTrigger

    project = project or events.current_project()
    return DeploymentEventTrigger(
        name=f"{spec.name}-drift@{project}",
        expect={events.DRIFT_DETECTED},
        match={"prefect.resource.id": events.model_resource_id(spec.name, project)},
        parameters={"model": spec.name, "fingerprint": "{{ event.payload.fingerprint }}", "reason": "drift"},
    )


def build(specs: list[ModelSpec], project: str | None = None) -> list[Any]:
    """Runner deployments for every spec: ``retrain/<model>@<project>`` and ``monitor/<model>@<project>``."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    from flows.monitor import monitor
    from flows.retrain import retrain

    project = project or events.current_project()
    deployments = []
    for spec in specs:
        # Runs inherit the deployment's tags: the project's tag is what its run-failed automation matches.
        tags = ["driftline", events.project_tag(project), f"model:{spec.name}"]
        schedule = spec.schedule
        retrain_schedules = (
            [CronSchedule(cron=schedule.retrain_cron, timezone=schedule.timezone)] if schedule.retrain_cron else []
        )
        deployments.append(
            retrain.to_deployment(
                name=events.deployment_name(spec.name, project),
                parameters={"model": spec.name, "reason": "scheduled"},
                schedules=retrain_schedules,
                triggers=[drift_trigger(spec, project)],
                tags=tags,
                description=f"Retrain {spec.name} (project {project}): nightly and on drift.",
            )
        )
        monitor_schedules = (
            [IntervalSchedule(interval=timedelta(minutes=schedule.monitor_interval_minutes))]
            if schedule.monitor_interval_minutes
            else []
        )
        deployments.append(
            monitor.to_deployment(
                name=events.deployment_name(spec.name, project),
                parameters={"model": spec.name},
                schedules=monitor_schedules,
                tags=tags,
                description=f"Monitor {spec.name}'s landing location (project {project}) for new batches and drift.",
            )
        )
    return deployments


def serve(models: list[str] | None = None, limit: int | None = None) -> None:
    """Register and serve every model's deployments from this process until interrupted."""
    from prefect import serve as prefect_serve

    specs = [load_spec(name) for name in (models or list_models())]
    prefect_serve(*build(specs), limit=limit)
