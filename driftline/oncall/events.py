"""driftline's Prefect event names and resource ids, in one place for emitters and triggers alike.

Events carry references (model names, versions, paths, fingerprints, run ids), never data. Every resource id and
run tag carries the project's id (``driftline.settings.Settings.project_id``), so two projects on one Prefect
server never answer each other's events: ``driftline.model.<project>.<model>``, labelled ``driftline.project`` and
``driftline.model``; flow runs tagged ``driftline-project:<project>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.oncall.alerts import Alert

VALIDATION_FAILED = "driftline.validation.failed"
MODEL_REJECTED = "driftline.model.rejected"
MODEL_PROMOTED = "driftline.model.promoted"
DRIFT_DETECTED = "driftline.drift.detected"
DRIFT_UNDECIDED = "driftline.drift.undecided"  # columns too small or unscorable: never counted as fine
MODEL_ROLLED_BACK = "driftline.model.rolled-back"
MONITOR_RAN = "driftline.monitor.ran"  # every monitor run: the dead-man's switch listens for its absence

ALERT_KEY_LABEL = "driftline.alert-key"

PROJECT_LABEL = "driftline.project"
MODEL_LABEL = "driftline.model"

RESOURCE_PREFIX = "driftline.model."
PROJECT_TAG_PREFIX = "driftline-project:"
# The tag naming the process that holds a CLI-started run (driftline.runtime.zombies writes and reads it).
HOLDER_TAG_PREFIX = "driftline-holder:"


def current_project() -> str:
    """The id of the project this process works on (read from the settings now)."""
    from driftline.settings import get_settings

    return get_settings().project_id


def model_resource_id(model: str, project: str | None = None) -> str:
    """The event resource id of a project's model: what emitters send and triggers match on."""
    return f"{RESOURCE_PREFIX}{project or current_project()}.{model}"


def model_resource(model: str, project: str | None = None) -> dict[str, str]:
    project = project or current_project()
    return {
        "prefect.resource.id": model_resource_id(model, project),
        "prefect.resource.name": model,
        PROJECT_LABEL: project,
        MODEL_LABEL: model,
    }


def project_tag(project: str | None = None) -> str:
    """The tag on a project's deployments and flow runs, which its run-failed automation matches."""
    return f"{PROJECT_TAG_PREFIX}{project or current_project()}"


def project_tag_resource_id(project: str | None = None) -> str:
    """How Prefect names the tag among a flow-run event's related resources (role ``tag``)."""
    return f"prefect.tag.{project_tag(project)}"


def run_tags(project: str | None = None) -> AbstractContextManager[set[str]]:
    """Tag the flow runs started inside with the project, so its run-failed automation sees them.

    Runs started by a deployment carry the tag already; a flow called directly (the CLI, the demo) needs this::

        with events.run_tags():
            train(model="fraud")
    """
    from prefect import tags

    return tags("driftline", project_tag(project))


def holder_tags(tags: Iterable[str]) -> list[str]:
    """A run's holder tags: its subflow runs carry them too, so a killed CLI process's subflow run is reconciled as
    Crashed with it. Not the project's tag: its run-failed automation would page twice for one failure."""
    return [tag for tag in tags if tag.startswith(HOLDER_TAG_PREFIX)]


def emit(
    event: str, model: str, payload: dict[str, Any], alert: Alert | None = None, project: str | None = None
) -> None:
    """Emit a driftline event about a project's model (default: this one's) to the Prefect API.

    The event is related to the current flow run, if any. With an ``alert``, the payload carries it
    (``payload.alert``: subject, body, severity...) and the resource carries its dedupe key, which the notification
    automations bucket on.
    """
    from prefect.events import emit_event

    resource = model_resource(model, project)
    if alert is not None:
        payload = {**payload, "alert": alert.as_payload()}
        resource[ALERT_KEY_LABEL] = alert.dedupe_key
    emit_event(event=event, resource=resource, payload=_bounded(payload))


# Prefect refuses an event over 1.5 MB (EventTooLarge), which would fail the run that emits it: a batch with a 1 MB
# field quoted in its validation failures must still be reported. Each text in a payload is cut to this many chars.
MAX_TEXT = 50_000


def _bounded(value: Any) -> Any:
    """The payload with every long text cut to MAX_TEXT characters (saying how long it was)."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"{value[:MAX_TEXT]}… ({len(value)} characters, cut)"
    if isinstance(value, dict):
        return {key: _bounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bounded(item) for item in value]
    return value


def current_run_url() -> str | None:
    """The Prefect UI link of the flow run this code runs in, if any."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    run_id = flow_run.get_id()
    ui = PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api")
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if run_id and ui else None


def deployment_name(model: str, project: str | None = None) -> str:
    """The name of a model's deployments in a project (the flow's name comes before it: ``retrain/<this>``)."""
    return f"{model}@{project or current_project()}"
