"""On-call automations on the Prefect server, made from a model's spec (``driftline deploy``).

One automation per alert kind in ``notify.alerts``, named ``driftline/<model>/<kind>`` and tagged
``driftline-model:<model>``, each sending through every block in ``notify.blocks``:

- driftline's own events (validation failed, drift detected, model rejected, promoted, rolled back): the message
  is the alert the event carries (``payload.alert``); the trigger fires once per dedupe key
  (``driftline.alert-key``) per ``notify.dedupe_minutes`` — Prefect's reactive triggers fire on the first
  matching event and then wait out the window;
- ``run_failed``: a ``train-``, ``monitor-`` or ``retrain-<model>`` flow run that Failed or Crashed, except a
  failure the validation alert already reports (a ``DataValidationError``), once per run name per window;
- ``heartbeat``: the dead-man's switch, a proactive trigger that fires when no ``driftline.monitor.ran`` event has
  arrived for the model in ``notify.heartbeat_minutes``.

Deploying replaces the model's automations, so the spec is the whole truth. Webhook URLs and tokens live in the
notification blocks, never in the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from driftline import alerts, events
from driftline.errors import SpecError
from driftline.spec import ModelSpec, heartbeat_minutes

EVENT_ALERTS = {
    "validation_failed": events.VALIDATION_FAILED,
    "drift_detected": events.DRIFT_DETECTED,
    "model_rejected": events.MODEL_REJECTED,
    "model_promoted": events.MODEL_PROMOTED,
    "rolled_back": events.MODEL_ROLLED_BACK,
}
FLOWS = ("train", "monitor", "retrain")


@dataclass(frozen=True)
class Deployed:
    name: str
    trigger: str


def model_tag(model: str) -> str:
    return f"driftline-model:{model}"


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


def plan(spec: ModelSpec, block_ids: list[UUID]) -> list[Any]:
    """The automations the spec asks for (``AutomationCore`` objects), not yet created."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    model = spec.name
    window = timedelta(minutes=spec.notify.dedupe_minutes)
    planned = []

    def add(kind: str, trigger: Any, subject: str, body: str, description: str) -> None:
        actions = [SendNotification(block_document_id=b, subject=subject, body=body) for b in block_ids]
        planned.append(
            AutomationCore(
                name=f"driftline/{model}/{kind}",
                description=description,
                tags=["driftline", model_tag(model)],
                trigger=trigger,
                actions=actions,
            )
        )

    for kind in spec.notify.alerts:
        if kind in EVENT_ALERTS:
            trigger = EventTrigger(
                expect={EVENT_ALERTS[kind]},
                match={"prefect.resource.id": events.model_resource_id(model)},
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
                match={"prefect.resource.id": events.model_resource_id(model)},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(minutes=minutes),
            )
            subject, body = alerts.heartbeat_template(model, minutes)
            add(kind, trigger, subject, body, f"no monitor run of {model} for {minutes:g} min")
    return planned


def deploy(spec: ModelSpec) -> list[Deployed]:
    """Replace the model's automations on the Prefect server with the ones its spec asks for."""
    from prefect.client.orchestration import get_client

    block_ids = resolve_blocks(spec)
    planned = plan(spec, block_ids) if block_ids else []
    from prefect.client.schemas.sorting import AutomationSort

    with get_client(sync_client=True) as client:
        # limit and sort given: the sync client's defaults (None) are refused by the server with a 422.
        for existing in client.read_automations(sort=AutomationSort.CREATED_DESC, limit=200):
            if model_tag(spec.name) in existing.tags:
                client.delete_automation(existing.id)
        for automation in planned:
            client.create_automation(automation)
    return [Deployed(a.name, ", ".join(sorted(a.trigger.expect))) for a in planned]
