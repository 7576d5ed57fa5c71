"""driftline's Prefect event names and resource ids, in one place for emitters and triggers alike.

Events carry references (model names, versions, paths, fingerprints, run ids), never data.
"""

from __future__ import annotations

from typing import Any

VALIDATION_FAILED = "driftline.validation.failed"
MODEL_REJECTED = "driftline.model.rejected"
MODEL_PROMOTED = "driftline.model.promoted"
DRIFT_DETECTED = "driftline.drift.detected"

RESOURCE_PREFIX = "driftline.model."


def model_resource_id(model: str) -> str:
    return f"{RESOURCE_PREFIX}{model}"


def model_resource(model: str) -> dict[str, str]:
    return {"prefect.resource.id": model_resource_id(model), "prefect.resource.name": model, "driftline.model": model}


def emit(event: str, model: str, payload: dict[str, Any]) -> None:
    """Emit a driftline event about a model to the Prefect API (related to the current flow run, if any)."""
    from prefect.events import emit_event

    emit_event(event=event, resource=model_resource(model), payload=payload)
