"""The on-call automations a spec asks for, before any server sees them; and the alerts' text."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from driftline import alerts
from driftline.automations import plan, resolve_blocks
from driftline.errors import SpecError
from driftline.spec import load_spec
from tests.conftest import Project


def test_one_automation_per_alert_with_dedupe_on_the_alert_key(project: Project) -> None:
    spec = load_spec("fraud", {"notify.dedupe_minutes": 15, "notify.blocks": ["custom-webhook/a"]})
    blocks = [uuid.uuid4(), uuid.uuid4()]
    planned = {a.name: a for a in plan(spec, blocks, "shop")}
    assert set(planned) == {f"driftline/shop/fraud/{kind}" for kind in spec.notify.alerts}
    assert all(a.tags == ["driftline", "driftline-project:shop", "driftline-model:fraud"] for a in planned.values())

    drift = planned["driftline/shop/fraud/drift_detected"]
    assert drift.trigger.expect == {"driftline.drift.detected"}
    assert drift.trigger.match.root == {"prefect.resource.id": "driftline.model.shop.fraud"}
    assert drift.trigger.for_each == {"driftline.alert-key"} and drift.trigger.within == timedelta(minutes=15)
    assert [a.block_document_id for a in drift.actions] == blocks
    assert drift.actions[0].body == "{{ event.payload.alert.body }}"

    failed = planned["driftline/shop/fraud/run_failed"].trigger
    assert failed.match.root["prefect.resource.name"] == ["train-fraud", "monitor-fraud", "retrain-fraud"]
    assert failed.match.root["prefect.state-message"] == "!*DataValidationError*"
    assert failed.match_related.root == {
        "prefect.resource.role": "tag",
        "prefect.resource.id": "prefect.tag.driftline-project:shop",
    }

    heartbeat = planned["driftline/shop/fraud/heartbeat"].trigger
    assert heartbeat.match.root == {"prefect.resource.id": "driftline.model.shop.fraud"}
    assert heartbeat.posture == "Proactive" and heartbeat.within == timedelta(minutes=180)  # 3 x 60-minute interval


def test_automations_belong_to_the_current_project_unless_told(project: Project) -> None:
    from driftline.settings import get_settings

    spec = load_spec("fraud", {"notify.alerts": ["model_promoted"]})
    (automation,) = plan(spec, [uuid.uuid4()])
    assert automation.name == f"driftline/{get_settings().project_id}/fraud/model_promoted"


def test_the_spec_chooses_the_alerts_and_a_monitor_without_schedule_has_no_heartbeat(project: Project) -> None:
    spec = load_spec("breast_cancer", {"notify.alerts": ["model_promoted", "heartbeat"]})
    assert [a.name for a in plan(spec, [uuid.uuid4()], "shop")] == ["driftline/shop/breast_cancer/model_promoted"]


def test_blocks_are_named_not_inlined(project: Project, prefect_server: str) -> None:
    with pytest.raises(SpecError, match=r"notify\.blocks.*must be \"<block type>/<block name>\""):
        load_spec("fraud", {"notify.blocks": ["https://hooks.slack.com/services/T0/B0/XYZ"]})
    spec = load_spec("fraud", {"notify.blocks": ["custom-webhook/no-such-block"]})
    with pytest.raises(SpecError, match=r"notify\.blocks: no Prefect block 'custom-webhook/no-such-block'"):
        resolve_blocks(spec)


def test_an_alert_says_what_broke_where_to_look_and_what_to_run() -> None:
    alert = alerts.drift_detected(
        "fraud",
        "v7",
        "batch landing/x.parquet",
        "drift in 1 of the last 1 batches",
        [
            {"column": "country", "score": 0.12, "method": "hellinger", "threshold": 0.1},
            {
                "column": "amount",
                "score": 0.31,
                "method": "hellinger",
                "threshold": 0.08,
                "role": "feature",
                "floor": 0.04,
                "rows": 8000,
            },
        ],
        "/state/reports/fraud/abc-drift.html",
        "http://ui/runs/flow-run/1",
    )
    assert (
        alert.subject
        == "[driftline WARNING] fraud: feature drift in amount, country (batch landing/x.parquet); retrain requested"
    )
    lines = alert.body.splitlines()
    # the biggest first, with its noise floor at the batch's size
    assert "  - amount (feature): hellinger 0.310 >= threshold 0.080 (noise floor 0.040 at 8000 rows)" in lines
    assert "report: file:///state/reports/fraud/abc-drift.html" in lines and "run: http://ui/runs/flow-run/1" in lines
    assert (
        lines[-2].startswith("run this: driftline drift fraud")
        and lines[-1] == "runbook: docs/runbook.md#drift-detected"
    )
    same = alerts.drift_detected(
        "fraud",
        "v8",
        "traffic",
        "other",
        [
            {"column": "amount", "score": 0.2, "method": "hellinger", "threshold": 0.08},
            {"column": "country", "score": 0.5, "method": "hellinger", "threshold": 0.1},
        ],
        None,
        None,
    )
    assert same.dedupe_key == alert.dedupe_key  # the same columns drifting is the same problem
