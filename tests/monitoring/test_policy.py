"""The retrain policy at its edges: N of M, cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftline.monitoring import policy
from driftline.monitoring.drift import DriftReport
from driftline.spec import Drift

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([False], policy.NO_DRIFT),
        ([True], policy.BELOW_POLICY),  # 1 of 1 seen, 2 of 3 required
        ([True, True], policy.RETRAIN_REQUESTED),
        ([True, False, True], policy.RETRAIN_REQUESTED),
        ([True, False, False, True], policy.BELOW_POLICY),  # the 4th is outside the last 3
        ([False, True, True], policy.NO_DRIFT),  # the newest batch is clean
    ],
)
def test_n_of_m(history: list[bool], expected: str) -> None:
    rule = Drift(min_drifted=2, of_last=3, cooldown_minutes=0)
    assert policy.decide(history, rule, None, NOW).decision == expected


def test_defaults_request_on_the_first_drifted_batch() -> None:
    assert policy.decide([True], Drift(), None, NOW).retrain
    assert not policy.decide([False, True], Drift(), None, NOW).retrain


def test_cooldown_edges() -> None:
    rule = Drift(cooldown_minutes=60)
    inside = policy.decide([True], rule, NOW - timedelta(minutes=59, seconds=59), NOW)
    assert inside.decision == policy.SKIPPED_COOLDOWN and "cooldown (60 min)" in inside.reason
    assert policy.decide([True], rule, NOW - timedelta(minutes=60), NOW).retrain
    assert policy.decide([True], Drift(cooldown_minutes=0), NOW, NOW).retrain


def test_min_drifted_cannot_exceed_of_last() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        Drift(min_drifted=3, of_last=2)


def _stored(*columns: tuple[str, str]) -> DriftReport:
    rows = [{"column": f"c{i}", "role": role, "status": status} for i, (role, status) in enumerate(columns)]
    return DriftReport.from_dict(_REPORT | {"columns": rows})


_REPORT = {"model": "fraud", "version": "v1", "batch": "b", "reference": "r", "rows": 100}


def test_only_the_kinds_the_policy_acts_on_count() -> None:
    target_only = _stored(("feature", "ok"), ("target", "drift"))
    assert policy.flagged(target_only, ["feature", "target", "prediction"]) is True
    assert policy.flagged(target_only, ["feature"]) is False


def test_a_batch_where_nothing_was_decided_is_neither_drifted_nor_clean() -> None:
    undecided = _stored(("feature", "insufficient_data"), ("target", "unscorable"))
    assert policy.flagged(undecided, ["feature", "target"]) is None
    stored_before_statuses = DriftReport.from_dict(_REPORT | {"columns": [{"column": "x", "score": 0.2}]})
    assert policy.flagged(stored_before_statuses, ["feature"], fallback=True) is True
    rule = Drift(min_drifted=2, of_last=2, cooldown_minutes=0)
    assert policy.decide([None, True], rule, None, NOW).decision == policy.UNDECIDED
    # Older undecided batches are left out of the window rather than counted as clean.
    assert policy.decide([True, None, True], rule, None, NOW).decision == policy.RETRAIN_REQUESTED


def test_a_retrain_waits_out_the_cooldown_since_the_last_retrain_started() -> None:
    rule = Drift(cooldown_minutes=30)
    started = datetime(2026, 11, 23, 11, 45, 7, tzinfo=UTC)

    skipped = policy.retrain_cooldown(rule, started, NOW)

    assert skipped is not None and skipped.decision == policy.SKIPPED_COOLDOWN
    assert skipped.reason == "a retrain started at 11:45:07 UTC; drift.cooldown_minutes is 30"
    assert policy.retrain_cooldown(rule, NOW - timedelta(minutes=30), NOW) is None
    assert policy.retrain_cooldown(rule, None, NOW) is None
