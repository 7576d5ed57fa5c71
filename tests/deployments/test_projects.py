"""One Prefect server, many projects: each project answers only its own events, runs, automations and artifacts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from deployments.serve import build, drift_trigger
from driftline.oncall import events
from driftline.oncall.automations import _replaces, plan
from driftline.oncall.events import deployment_name
from driftline.settings import get_settings
from driftline.spec import load_spec
from tests.conftest import Project

ALPHA, BETA = "alpha", "beta"


def _resource(model: str, project: str) -> Any:
    from prefect.events.schemas.events import Resource

    return Resource.model_validate(events.model_resource(model, project))


def _flow_run_failed(name: str, tags: list[str]) -> Any:
    """A ``prefect.flow-run.Failed`` event as the server sees it, related to the run's tags."""
    from prefect.server.events.schemas.events import ReceivedEvent

    return ReceivedEvent.model_validate(
        {
            "occurred": "2026-01-01T00:00:00Z",
            "event": "prefect.flow-run.Failed",
            "resource": {
                "prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}",
                "prefect.resource.name": name,
                "prefect.state-message": "Flow run encountered an exception: DataError: no files match",
            },
            "related": [{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"} for tag in tags],
            "id": str(uuid.uuid4()),
        }
    )


def _server_trigger(trigger: Any) -> Any:
    """The server's view of a trigger, whose ``covers(event)`` is what the server evaluates."""
    from prefect.server.events.schemas.automations import EventTrigger

    return EventTrigger.model_validate(trigger.model_dump(mode="json"))


def test_resource_ids_carry_the_project_with_labels_for_both() -> None:
    alpha, beta = events.model_resource("fraud", ALPHA), events.model_resource("fraud", BETA)
    assert alpha["prefect.resource.id"] == "driftline.model.alpha.fraud"
    assert beta["prefect.resource.id"] == "driftline.model.beta.fraud"
    assert (alpha["driftline.project"], alpha["driftline.model"], alpha["prefect.resource.name"]) == (
        "alpha",
        "fraud",
        "fraud",
    )
    assert events.project_tag(ALPHA) != events.project_tag(BETA)


def test_the_current_project_is_the_default_everywhere(project: Project) -> None:
    from tasks.artifacts import artifact_key

    current = get_settings().project_id
    assert current.startswith("project-")  # the fixture's folder is named "project"
    assert events.model_resource_id("fraud") == f"driftline.model.{current}.fraud"
    assert artifact_key("fraud", "gate") == f"{current}-fraud-gate"
    assert deployment_name("fraud") == f"fraud@{current}"


def test_artifact_keys_differ_by_project_and_keep_to_prefects_alphabet() -> None:
    import re

    from tasks.artifacts import artifact_key

    keys = [artifact_key("breast_cancer", "gate", project) for project in (ALPHA, BETA, "checkout-3f2a9c")]
    assert keys == ["alpha-breast-cancer-gate", "beta-breast-cancer-gate", "checkout-3f2a9c-breast-cancer-gate"]
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key) for key in keys)


def test_the_drift_trigger_of_one_project_ignores_the_drift_of_another(project: Project) -> None:
    spec = load_spec("fraud")
    alpha, beta = drift_trigger(spec, ALPHA), drift_trigger(spec, BETA)
    assert alpha.match.matches(_resource("fraud", ALPHA))
    assert not alpha.match.matches(_resource("fraud", BETA))
    assert beta.match.matches(_resource("fraud", BETA))
    assert not beta.match.matches(_resource("fraud", ALPHA))
    assert not alpha.match.matches(_resource("fraud_v2", ALPHA))  # nor another model's


def test_each_projects_automations_match_only_its_own_events_and_runs(project: Project) -> None:
    spec = load_spec("fraud", {"notify.blocks": ["custom-webhook/a"], "notify.heartbeat_minutes": 30})
    alpha = {a.name.split("/")[-1]: a for a in plan(spec, [uuid.uuid4()], ALPHA)}
    beta = {a.name.split("/")[-1]: a for a in plan(spec, [uuid.uuid4()], BETA)}
    assert set(alpha) == set(beta) == set(spec.notify.alerts)
    assert not {a.name for a in alpha.values()} & {a.name for a in beta.values()}

    for kind in ("validation_failed", "drift_detected", "model_rejected", "model_promoted", "rolled_back", "heartbeat"):
        assert alpha[kind].trigger.match.matches(_resource("fraud", ALPHA)), kind
        assert not alpha[kind].trigger.match.matches(_resource("fraud", BETA)), kind
        assert not beta[kind].trigger.match.matches(_resource("fraud", ALPHA)), kind

    run_failed = _server_trigger(alpha["run_failed"].trigger)
    assert run_failed.covers(_flow_run_failed("train-fraud", ["driftline", "driftline-project:alpha"]))
    assert not run_failed.covers(_flow_run_failed("train-fraud", ["driftline", "driftline-project:beta"]))
    assert not run_failed.covers(_flow_run_failed("train-fraud", []))  # a run started without the project's tag
    assert not run_failed.covers(_flow_run_failed("train-other", ["driftline-project:alpha"]))


def test_deploying_replaces_its_own_and_untagged_legacy_automations_only() -> None:
    mine = ["driftline", "driftline-project:alpha", "driftline-model:fraud"]
    assert _replaces(mine, ALPHA, "fraud")
    assert not _replaces(["driftline", "driftline-project:beta", "driftline-model:fraud"], ALPHA, "fraud")
    assert not _replaces(mine, ALPHA, "churn")
    # From before projects had ids: they match every project's runs, so the first deploy of any project drops them.
    assert _replaces(["driftline", "driftline-model:fraud"], ALPHA, "fraud")


def test_deployments_are_named_and_tagged_by_project(project: Project) -> None:
    spec = load_spec("fraud")
    alpha, beta = build([spec], ALPHA), build([spec], BETA)
    assert [(d.flow_name, d.name) for d in alpha] == [("retrain", "fraud@alpha"), ("monitor", "fraud@alpha")]
    assert {d.name for d in alpha}.isdisjoint(d.name for d in beta)
    assert all("driftline-project:alpha" in d.tags for d in alpha)
    assert alpha[0].triggers[0].match.matches(_resource("fraud", ALPHA))
    assert not alpha[0].triggers[0].match.matches(_resource("fraud", BETA))


# ---- on a real server --------------------------------------------------------------------------------------------


@pytest.fixture
def two_projects() -> tuple[str, str]:
    """Two project ids of this test alone: the session's server outlives it."""
    suffix = uuid.uuid4().hex[:6]
    return f"alpha-{suffix}", f"beta-{suffix}"


@pytest.fixture
def receivers() -> Iterator[tuple[Any, Any]]:
    from tests.integration.test_notifications import Receiver

    pair = (Receiver(), Receiver())
    for receiver in pair:
        receiver.thread.start()
    try:
        yield pair
    finally:
        for receiver in pair:
            receiver.server.shutdown()
            receiver.server.server_close()


@pytest.mark.integration
def test_two_projects_automations_live_on_one_server_and_answer_only_their_own_events(
    project: Project,
    prefect_server: str,
    monkeypatch: pytest.MonkeyPatch,
    two_projects: tuple[str, str],
    receivers: tuple[Any, Any],
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import AutomationSort
    from prefect.events.filters import AutomationFilter, AutomationFilterTags

    from driftline.oncall import alerts
    from driftline.oncall.automations import deploy

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    alpha, beta = two_projects
    specs = {}
    for project_id, receiver in zip(two_projects, receivers, strict=True):
        block = f"driftline-test-{project_id}"
        CustomWebhookNotificationBlock(
            name=block, url=receiver.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
        ).save(block, overwrite=True)
        specs[project_id] = load_spec("fraud", {"notify.blocks": [f"custom-webhook/{block}"]})
    deploy(specs[alpha], alpha)
    deploy(specs[beta], beta)
    deploy(specs[alpha], alpha)  # a redeploy replaces alpha's own, and leaves beta's

    def names(project_id: str) -> set[str]:
        tagged = AutomationFilter(tags=AutomationFilterTags(all_=[events.project_tag(project_id)]))
        with get_client(sync_client=True) as client:
            found = client.read_automations(automations=tagged, sort=AutomationSort.NAME_ASC, limit=200, offset=0)
            return {a.name for a in found}

    kinds = {*specs[alpha].notify.alerts, "zombies"}  # heartbeat included: fraud's monitor has a schedule
    assert names(alpha) == {f"driftline/{alpha}/fraud/{kind}" for kind in kinds}
    assert names(beta) == {f"driftline/{beta}/fraud/{kind}" for kind in kinds}

    # Drift in alpha's fraud model pages alpha's on-call, and beta's hears nothing.
    alert = alerts.drift_detected(
        "fraud",
        "v1",
        "batch landing/x.parquet",
        "drift in 1 of the last 1 batches",
        [{"column": "amount", "score": 0.31, "method": "hellinger", "threshold": 0.08}],
        None,
        None,
    )
    events.emit(events.DRIFT_DETECTED, "fraud", {"fingerprint": "f" * 16}, alert, project=alpha)
    to_alpha, to_beta = receivers
    (message,) = to_alpha.wait_for("drift-detected")
    assert "amount" in message["subject"]
    time.sleep(3)  # anything misrouted would have arrived with it
    assert to_beta.messages == []


@pytest.mark.integration
def test_a_drift_event_of_one_project_starts_only_its_own_retrain(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch, two_projects: tuple[str, str]
) -> None:
    from prefect.client.orchestration import get_client

    from driftline.runtime.prefect_api import deployment_id, flow_runs

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    alpha = two_projects[0]
    spec = load_spec("fraud")
    retrains = []
    for project_id in two_projects:
        retrain = build([spec], project_id)[0]
        retrain.schedules = []  # only the drift trigger: no nightly runs in the session's server
        retrain.apply()  # registers the deployment and its drift trigger; no runner, so runs stay scheduled
        retrains.append(deployment_id(prefect_server, "retrain", "fraud", project=project_id))
    try:
        events.emit(events.DRIFT_DETECTED, "fraud", {"fingerprint": "a" * 16}, project=alpha)
        deadline = time.monotonic() + 60
        while not flow_runs(prefect_server, retrains[0]) and time.monotonic() < deadline:
            time.sleep(0.5)
        (run,) = flow_runs(prefect_server, retrains[0])
        assert run["parameters"] == {"model": "fraud", "fingerprint": "a" * 16, "reason": "drift"}
        assert "driftline-project:" + alpha in run["tags"]  # runs inherit the deployment's project tag
        time.sleep(3)  # a misrouted run would have been created with it
        assert flow_runs(prefect_server, retrains[1]) == []
    finally:
        with get_client(sync_client=True) as client:
            for retrain_id in retrains:
                client.delete_deployment(uuid.UUID(retrain_id))
