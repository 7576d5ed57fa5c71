"""The statuses and decisions the registry stores, as StrEnums: the monitor, the retrain flow and the train flow
write them, the views and the policy read them. Stored as their text, so existing registries read unchanged."""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    """Where a monitored batch (or traffic window) stands in the registry."""

    PROCESSING = "processing"  # claimed by a monitor run
    ACCEPTED = "accepted"  # validated and scored
    WINDOW = "window"  # a scored live-traffic window (fingerprint window:<version>:<start>)
    QUARANTINED = "quarantined"  # failed validation; kept in quarantine
    REPLAYED = "replayed"  # released by `driftline replay`: the next claim takes it
    RELEASED = "released"  # a transient failure gave the claim back; the file is back in landing, the next run retries


# A claim in one of these states can be taken (a processing one only once its holder died or its lease expired).
RECLAIMABLE = (BatchStatus.PROCESSING, BatchStatus.REPLAYED, BatchStatus.RELEASED)
# A batch in one of these states is done: the same content arriving again is a duplicate.
DONE = (BatchStatus.ACCEPTED, BatchStatus.QUARANTINED, BatchStatus.WINDOW)
# Batches and windows whose drift was scored: what the policy and the drift views read.
SCORED = (BatchStatus.ACCEPTED, BatchStatus.WINDOW)


class Decision(StrEnum):
    """What the monitor and the retrain flow decided about a model, as the registry records it."""

    # the monitor's drift policy, on the newest batch or traffic window
    RETRAIN_REQUESTED = "retrain_requested"
    NO_DRIFT = "no_drift"
    BELOW_POLICY = "drift_below_policy"
    UNDECIDED = "drift_undecided"
    # the retrain flow: skipped, started, and how its training run ended
    SKIPPED_COOLDOWN = "skipped_cooldown"
    SKIPPED_DUPLICATE = "skipped_duplicate"
    RETRAIN_STARTED = "retrain_started"
    RETRAIN_PROMOTED = "retrain_promoted"
    RETRAIN_UNCHANGED = "retrain_unchanged"
    RETRAIN_NOT_BETTER = "retrain_not_better"
    RETRAIN_REJECTED = "retrain_rejected"
    # a window batch that failed validation at train time
    WINDOW_BATCH_QUARANTINED = "window_batch_quarantined"


class Check(StrEnum):
    """What a version must pass before it can be champion (promoted, or rolled back to)."""

    GATE = "gate"  # the promotion gate accepted it
    DIGESTS = "digests"  # its model files' sha256 are recorded, so every load can be verified
    SERVABILITY = "servability"  # it served holdout rows like the model in process


class CheckStatus(StrEnum):
    """A check's result. ``waived`` only where the spec turns the check off (``serving.check = false``)."""

    PASSED = "passed"
    FAILED = "failed"
    WAIVED = "waived"


REQUIRED_CHECKS = (Check.GATE, Check.DIGESTS, Check.SERVABILITY)
GOOD = (CheckStatus.PASSED, CheckStatus.WAIVED)
