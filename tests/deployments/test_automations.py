"""The on-call automations a spec asks for, before any server sees them; and the alerts' text."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from driftline.errors import SpecError
from driftline.oncall import alerts
from driftline.oncall.automations import plan, resolve_blocks
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


def _reason(**classifiers: float) -> str:
    """A real gate's reason: old and new rows, the challenger and the champion (v1) on each."""
    from tests.tasks.test_gate import _classifier, _decide, _labels, _spec

    old, new = _labels(400, 1), _labels(150, 2)
    decision = _decide(
        _spec(min_metric=classifiers.get("min_metric", 0.0), max_regression=0.05),
        _classifier(old, classifiers["old"], 3),
        _classifier(old, 0.81, 4),
        recent=(_classifier(new, classifiers["new"], 5), _classifier(new, classifiers["champion_new"], 6)),
    )
    assert decision.outcome == "regressed"
    return decision.reason


@pytest.mark.parametrize(
    ("reason", "outcome", "title"),
    [
        (
            lambda: _reason(old=0.95, new=0.55, champion_new=0.75),
            "regressed",
            "challenger regressed on the recent rows; champion v1 stays",
        ),
        (
            lambda: _reason(old=0.70, new=0.76, champion_new=0.50),
            "regressed",
            "challenger regressed on the fixed holdout (gate.max_regression); champion v1 stays",
        ),
        (
            lambda: _reason(old=0.60, new=0.60, champion_new=0.50, min_metric=0.7),
            "regressed",
            "challenger missed gate.min_metric; champion v1 stays",
        ),
        (
            lambda: "champion v1 could not be scored on this holdout (KeyError: 'x')",
            "incomparable",
            "challenger and champion could not be compared; champion v1 stays",
        ),
        (
            lambda: "servability check failed: p95 latency 80 ms > serving.latency_budget_ms 50",
            "unservable",
            "packaged version failed the servability check; champion v1 stays",
        ),
    ],
)
def test_a_rejection_alert_names_its_outcome(reason: Any, outcome: str, title: str) -> None:
    alert = alerts.model_rejected("fraud", "v1", reason(), "http://ui/runs/flow-run/2", outcome)

    assert alert.subject == f"[driftline WARNING] fraud: {title}"
    assert f"  - outcome: {outcome}" in alert.body.splitlines() and f"  - {reason()}" in alert.body.splitlines()
    assert alert.body.splitlines()[-1] == "runbook: docs/runbook.md#model-rejected"
    assert alert.subject_key == outcome


def test_rejections_dedupe_by_outcome() -> None:
    regressed = alerts.model_rejected("fraud", "v1", "significantly worse: one", None, "regressed")
    again = alerts.model_rejected("fraud", "v2", "significantly worse: another", None, "regressed")
    unservable = alerts.model_rejected("fraud", "v1", "servability check failed: x", None, "unservable")

    assert regressed.dedupe_key == again.dedupe_key != unservable.dedupe_key
    # Callers that do not pass the outcome still get the servability cause from the reason.
    assert alerts.model_rejected("fraud", "v1", "servability check failed: x", None).dedupe_key == unservable.dedupe_key
