"""The retrain policy: when does drift become a retrain request? Plain functions, replayable by backtest.

A batch counts as drifted when a column of a kind in ``drift.retrain_on`` (feature, target, prediction) drifted.
Drift must be seen in ``min_drifted`` of the last ``of_last`` decided batches (hysteresis), and a new request
waits ``cooldown_minutes`` after the last one. A batch where nothing could be decided (too few rows, nothing
scorable) is neither drifted nor clean: it is its own decision and does not count toward the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from driftline.loop.statuses import SCORED, Decision
from driftline.spec import Drift, ModelSpec

if TYPE_CHECKING:
    from driftline.monitoring.drift import DriftReport
    from driftline.registry import Registry


# The policy's own names, as they were before the enum; the same members.
RETRAIN_REQUESTED = Decision.RETRAIN_REQUESTED
NO_DRIFT = Decision.NO_DRIFT
BELOW_POLICY = Decision.BELOW_POLICY
SKIPPED_COOLDOWN = Decision.SKIPPED_COOLDOWN
SKIPPED_DUPLICATE = Decision.SKIPPED_DUPLICATE
UNDECIDED = Decision.UNDECIDED


@dataclass(frozen=True)
class PolicyDecision:
    decision: Decision
    reason: str

    @property
    def retrain(self) -> bool:
        return self.decision == RETRAIN_REQUESTED


def flagged(drift: DriftReport | None, retrain_on: Sequence[str], fallback: bool | None = None) -> bool | None:
    """Whether a stored drift result counts toward a retrain: drift in a kind the policy acts on.

    None when nothing in the batch could be decided. Results stored before kinds and statuses existed
    (``drift.legacy``) fall back to their recorded flag.
    """
    if drift is None or not drift.columns or drift.legacy:
        return fallback
    if any(c.drifted and c.role in retrain_on for c in drift.columns):
        return True
    if len(drift.undecided()) == len(drift.columns):
        return None
    return False


def decide(history: list[bool | None], policy: Drift, last_request: datetime | None, now: datetime) -> PolicyDecision:
    """Decide on the newest batch; ``history`` holds drift flags of processed batches, newest first.

    A None flag is a batch where nothing could be decided: the newest one is reported as such, older ones are
    left out of the N-of-M window.
    """
    if history and history[0] is None:
        return PolicyDecision(UNDECIDED, "nothing in the newest batch could be decided (too few rows or unscorable)")
    recent = [flag for flag in history if flag is not None][: policy.of_last]
    drifted = sum(recent)
    if not recent or not recent[0]:
        return PolicyDecision(NO_DRIFT, f"no drift in the newest batch ({drifted} of the last {len(recent)} drifted)")
    if drifted < policy.min_drifted:
        return PolicyDecision(
            BELOW_POLICY,
            f"drift in {drifted} of the last {len(recent)} batches; the policy asks for "
            f"{policy.min_drifted} of {policy.of_last} (drift.min_drifted / drift.of_last)",
        )
    if last_request is not None and now - last_request < timedelta(minutes=policy.cooldown_minutes):
        wait = timedelta(minutes=policy.cooldown_minutes) - (now - last_request)
        return PolicyDecision(
            SKIPPED_COOLDOWN,
            f"drift in {drifted} of the last {len(recent)} batches, but a retrain was requested at "
            f"{last_request:%Y-%m-%d %H:%M:%S} UTC; cooldown ({policy.cooldown_minutes:g} min) ends in "
            f"{int(wait.total_seconds() // 60)} min",
        )
    return PolicyDecision(
        RETRAIN_REQUESTED,
        f"drift in {drifted} of the last {len(recent)} batches (policy {policy.min_drifted} of {policy.of_last})",
    )


def decide_retrain(
    registry: Registry, spec: ModelSpec, fingerprint: str, flow_run_id: str | None, now: datetime
) -> PolicyDecision:
    """Apply the spec's drift policy (N of M, cooldown) to the newest batches and windows; record the decision."""
    # Batches where nothing could be decided do not count, so look further back than of_last.
    scored = registry.batches(spec.name, status=SCORED, limit=4 * spec.drift.of_last + 20)
    history = [flagged(b.drift, spec.drift.retrain_on, fallback=b.drift_detected) for b in scored]
    requests = registry.decisions(spec.name, limit=1, decision=RETRAIN_REQUESTED)
    decision = decide(history, spec.drift, requests[0].at if requests else None, now)
    registry.record_decision(spec.name, decision.decision, decision.reason, fingerprint, flow_run_id)
    return decision


def retrain_cooldown(policy: Drift, last_start: datetime | None, now: datetime) -> PolicyDecision | None:
    """Skip a drift-started retrain while ``cooldown_minutes`` have not passed since the last retrain started."""
    if last_start is None or now - last_start >= timedelta(minutes=policy.cooldown_minutes):
        return None
    return PolicyDecision(
        SKIPPED_COOLDOWN,
        f"a retrain started at {last_start:%H:%M:%S} UTC; drift.cooldown_minutes is {policy.cooldown_minutes:g}",
    )
