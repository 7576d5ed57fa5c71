"""The retrain policy: when does drift become a retrain request? Plain functions, replayable by backtest.

Drift must be seen in ``min_drifted`` of the last ``of_last`` batches (hysteresis), and a new request waits
``cooldown_minutes`` after the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from driftline.spec import Drift

RETRAIN_REQUESTED = "retrain_requested"
NO_DRIFT = "no_drift"
BELOW_POLICY = "drift_below_policy"
SKIPPED_COOLDOWN = "skipped_cooldown"
SKIPPED_DUPLICATE = "skipped_duplicate"


@dataclass(frozen=True)
class PolicyDecision:
    decision: str
    reason: str

    @property
    def retrain(self) -> bool:
        return self.decision == RETRAIN_REQUESTED


def decide(history: list[bool], policy: Drift, last_request: datetime | None, now: datetime) -> PolicyDecision:
    """Decide on the newest batch; ``history`` holds drift flags of processed batches, newest first."""
    recent = history[: policy.of_last]
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
