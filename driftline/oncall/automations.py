"""On-call automations on the Prefect server, made from a model's spec (``driftline deploy``).

One automation per alert kind in ``notify.alerts``, named ``driftline/<project>/<model>/<kind>`` and tagged
``driftline-project:<project>`` and ``driftline-model:<model>``, each sending through every block in
``notify.blocks``. Each matches only its own project's events and runs, so projects can share a server:

- driftline's own events (validation failed, drift detected, model rejected, promoted, rolled back) about
  ``driftline.model.<project>.<model>``: the message is the alert the event carries (``payload.alert``); the
  trigger fires once per dedupe key (``driftline.alert-key``) per ``notify.dedupe_minutes`` — Prefect's reactive
  triggers fire on the first matching event and then wait out the window;
- ``run_failed``: a ``train-``, ``monitor-`` or ``retrain-<model>`` flow run tagged ``driftline-project:<project>``
  that Failed or Crashed, except a failure the validation alert already reports (a ``DataValidationError``), once
  per run name per window. Deployment runs carry the tag; a flow called directly needs ``events.run_tags()``;
- ``heartbeat``: the dead-man's switch, a proactive trigger that fires when no ``driftline.monitor.ran`` event has
  arrived for the project's model in ``notify.heartbeat_minutes``.

Besides the alerts, and with or without notification blocks, ``driftline/<project>/<model>/zombies`` marks Crashed a
run of the model whose process died: after a ``prefect.flow-run.heartbeat`` it expects another heartbeat or a final
state within three heartbeat periods, and changes the silent run's state to Crashed (which ``run_failed`` pages on).
See ``driftline.runtime.zombies`` for the other half, the reconcile at the start of a CLI command.

Deploying replaces the model's automations in this project only, so the spec is the whole truth and other projects'
automations stay. Webhook URLs and tokens live in the notification blocks, never in the spec.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from driftline.errors import SpecError
from driftline.oncall import alerts, events
from driftline.spec import AlertKind, ModelSpec, heartbeat_minutes

# The alert kinds an event carries; the other kinds (run_failed, heartbeat) are automations on flow-run states.
EVENT_ALERTS: dict[AlertKind, str] = {
    "validation_failed": events.VALIDATION_FAILED,
    "drift_detected": events.DRIFT_DETECTED,
    "drift_undecided": events.DRIFT_UNDECIDED,
    "model_rejected": events.MODEL_REJECTED,
    "model_promoted": events.MODEL_PROMOTED,
    "rolled_back": events.MODEL_ROLLED_BACK,
}
FLOWS = ("train", "monitor", "retrain")
_PAGE = 200
ZOMBIE_HEARTBEAT_SECONDS = 60  # driftline's default for PREFECT_FLOWS_HEARTBEAT_FREQUENCY (Prefect's own is 180)
MISSED_HEARTBEATS = 3  # a run is a zombie after this many heartbeat periods with neither a heartbeat nor an end


@dataclass(frozen=True)
class Deployed:
    name: str
    trigger: str


def model_tag(model: str) -> str:
    return f"driftline-model:{model}"


def automation_name(project: str, model: str, kind: str) -> str:
    return f"driftline/{project}/{model}/{kind}"


def _replaces(tags: list[str], project: str, model: str) -> bool:
    """Whether ``driftline deploy`` of this project's model replaces an automation with these tags.

    Besides its own, it removes the model's automations from before projects had ids (no project tag): they match
    every project's runs and would page for all of them.
    """
    if model_tag(model) not in tags:
        return False
    projects = [tag for tag in tags if tag.startswith(events.PROJECT_TAG_PREFIX)]
    return not projects or events.project_tag(project) in projects


def resolve_blocks(spec: ModelSpec) -> list[UUID]:
    """The block document ids of ``notify.blocks``; a missing or non-notification block is a SpecError."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    ids = []
    for slug in spec.notify.blocks:
        try:
            block = Block.load(slug, _sync=True)  # type: ignore[call-arg]
        except (ValueError, KeyError) as error:
            raise SpecError(
                f"{spec.label}: notify.blocks: no Prefect block {slug!r} ({error}); create it in the UI or with "
                "e.g. SlackWebhook(url=...).save('<name>')"
            ) from None
        if not isinstance(block, NotificationBlock):
            raise SpecError(
                f"{spec.label}: notify.blocks: {slug!r} is a {type(block).__name__}, not a notification block"
            )
        block_id = block._block_document_id
        if block_id is None:
            raise SpecError(f"{spec.label}: notify.blocks: {slug!r} has no saved document")
        ids.append(block_id)
    return ids


def plan(spec: ModelSpec, block_ids: list[UUID], project: str | None = None) -> list[Any]:
    """The automations the spec asks for in the project (``AutomationCore`` objects), not yet created."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    model = spec.name
    project = project or events.current_project()
    resource_id = events.model_resource_id(model, project)
    window = timedelta(minutes=spec.notify.dedupe_minutes)
    planned = []

    def add(kind: AlertKind, trigger: Any, subject: str, body: str, description: str) -> None:
        actions = [SendNotification(block_document_id=b, subject=subject, body=body) for b in block_ids]
        planned.append(
            AutomationCore(
                name=automation_name(project, model, kind),
                description=f"{description} (project {project})",
                tags=["driftline", events.project_tag(project), model_tag(model)],
                trigger=trigger,
                actions=actions,
            )
        )

    for kind in spec.notify.alerts:
        if kind in EVENT_ALERTS:
            trigger = EventTrigger(
                expect={EVENT_ALERTS[kind]},
                match={"prefect.resource.id": resource_id},
                for_each={events.ALERT_KEY_LABEL},
                posture=Posture.Reactive,
                threshold=1,
                within=window,
            )
            add(
                kind,
                trigger,
                "{{ event.payload.alert.subject }}",
                "{{ event.payload.alert.body }}",
                f"{EVENT_ALERTS[kind]} for {model}, once per alert key per {spec.notify.dedupe_minutes:g} min",
            )
        elif kind == "run_failed":
            trigger = EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match={
                    "prefect.resource.id": "prefect.flow-run.*",
                    "prefect.resource.name": [f"{flow}-{model}" for flow in FLOWS],
                    # The validation alert already says what broke, with the quarantined file.
                    "prefect.state-message": "!*DataValidationError*",
                },
                # Run names are the same in every project: the project's tag tells its runs apart.
                match_related={
                    "prefect.resource.role": "tag",
                    "prefect.resource.id": events.project_tag_resource_id(project),
                },
                for_each={"prefect.resource.name"},
                posture=Posture.Reactive,
                threshold=1,
                within=window,
            )
            subject, body = alerts.run_failed_template(model)
            add(kind, trigger, subject, body, f"a {'/'.join(FLOWS)} run of {model} failed or crashed")
        elif kind == "heartbeat":
            minutes = heartbeat_minutes(spec)
            if minutes is None:
                continue  # no monitor schedule and no notify.heartbeat_minutes: nothing to expect
            trigger = EventTrigger(
                expect={events.MONITOR_RAN},
                match={"prefect.resource.id": resource_id},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(minutes=minutes),
            )
            subject, body = alerts.heartbeat_template(model, minutes)
            add(kind, trigger, subject, body, f"no monitor run of {model} for {minutes:g} min")
    return planned


def heartbeat_seconds() -> int:
    """The flow-run heartbeat period in effect (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, which driftline defaults to 60 s;
    Prefect sends none below 30 s)."""
    from prefect.settings import get_current_settings

    value = get_current_settings().flows.heartbeat_frequency
    return max(int(value), 30) if value else ZOMBIE_HEARTBEAT_SECONDS


def zombie_automation(model: str, project: str | None = None, within: timedelta | None = None) -> Any:
    """The automation that marks Crashed a run of ``model`` in ``project`` that stopped sending heartbeats.

    After a heartbeat, Prefect expects another heartbeat or a final state within ``within`` (default three heartbeat
    periods); if none comes, it changes that run's state to Crashed. One bucket per flow run.
    """
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    project = project or events.current_project()
    within = within or timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds())
    trigger = EventTrigger(
        after={"prefect.flow-run.heartbeat"},
        expect={
            "prefect.flow-run.heartbeat",
            "prefect.flow-run.Completed",
            "prefect.flow-run.Failed",
            "prefect.flow-run.Cancelled",
            "prefect.flow-run.Crashed",
        },
        match={
            "prefect.resource.id": "prefect.flow-run.*",
            "prefect.resource.name": [f"{flow}-{model}" for flow in FLOWS],
        },
        match_related={"prefect.resource.role": "tag", "prefect.resource.id": events.project_tag_resource_id(project)},
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=within,
    )
    return AutomationCore(
        name=f"driftline/{project}/{model}/zombies",
        description=(
            f"mark Crashed a {'/'.join(FLOWS)} run of {model} silent for {within.total_seconds():g} s "
            f"(no heartbeat, no final state) (project {project})"
        ),
        tags=["driftline", events.project_tag(project), model_tag(model)],
        trigger=trigger,
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"driftline: no heartbeat for {within.total_seconds():g} s; the run's process is gone",
            )
        ],
    )


def deploy(spec: ModelSpec, project: str | None = None) -> list[Deployed]:
    """Replace the model's automations in this project on the Prefect server with the ones its spec asks for."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import AutomationSort
    from prefect.events.filters import AutomationFilter, AutomationFilterTags

    project = project or events.current_project()
    block_ids = resolve_blocks(spec)
    planned = plan(spec, block_ids, project) if block_ids else []
    planned.append(zombie_automation(spec.name, project))  # whether or not anyone is notified: no run stays Running
    of_model = AutomationFilter(tags=AutomationFilterTags(all_=[model_tag(spec.name)]))

    with get_client(sync_client=True) as client:
        stale = []
        # Every project's automations of this model name, a page at a time; limit and sort given because the sync
        # client's defaults (None) are refused by the server with a 422.
        for offset in itertools.count(0, _PAGE):
            page = client.read_automations(
                automations=of_model, sort=AutomationSort.CREATED_DESC, limit=_PAGE, offset=offset
            )
            stale += [a.id for a in page if _replaces(a.tags, project, spec.name)]
            if len(page) < _PAGE:
                break
        for automation_id in stale:
            client.delete_automation(automation_id)
        for automation in planned:
            client.create_automation(automation)
    return [Deployed(a.name, ", ".join(sorted(a.trigger.expect))) for a in planned]
