"""driftline's Prefect event names and resource ids, in one place for emitters and triggers alike.

Events carry references (model names, versions, paths, fingerprints, run ids), never data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.alerts import Alert

VALIDATION_FAILED = "driftline.validation.failed"
MODEL_REJECTED = "driftline.model.rejected"
MODEL_PROMOTED = "driftline.model.promoted"
DRIFT_DETECTED = "driftline.drift.detected"
MODEL_ROLLED_BACK = "driftline.model.rolled-back"
MONITOR_RAN = "driftline.monitor.ran"  # every monitor run: the dead-man's switch listens for its absence

ALERT_KEY_LABEL = "driftline.alert-key"

RESOURCE_PREFIX = "driftline.model."


def model_resource_id(model: str) -> str:
    return f"{RESOURCE_PREFIX}{model}"


def model_resource(model: str) -> dict[str, str]:
    return {"prefect.resource.id": model_resource_id(model), "prefect.resource.name": model, "driftline.model": model}


def emit(event: str, model: str, payload: dict[str, Any], alert: Alert | None = None) -> None:
    """Emit a driftline event about a model to the Prefect API (related to the current flow run, if any).

    With an ``alert``, the payload carries it (``payload.alert``: subject, body, severity...) and the resource
    carries its dedupe key, which the notification automations bucket on.
    """
    from prefect.events import emit_event

    resource = model_resource(model)
    if alert is not None:
        payload = {**payload, "alert": alert.as_payload()}
        resource[ALERT_KEY_LABEL] = alert.dedupe_key
    emit_event(event=event, resource=resource, payload=payload)


def current_run_url() -> str | None:
    """The Prefect UI link of the flow run this code runs in, if any."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    run_id = flow_run.get_id()
    ui = PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api")
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if run_id and ui else None
