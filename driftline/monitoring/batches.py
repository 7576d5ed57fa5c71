"""What the monitor did with each landed batch and live-traffic window, and how it is recorded in the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from logging import Logger, LoggerAdapter
from typing import TYPE_CHECKING, Any

from driftline.errors import StoreError
from driftline.loop.data import Batch
from driftline.loop.profiles import ProfileRecord
from driftline.loop.quarantine import Rejected
from driftline.loop.statuses import BatchStatus
from driftline.monitoring.drift import DriftReport
from driftline.monitoring.policy import PolicyDecision
from driftline.monitoring.traffic import TrafficWindow

if TYPE_CHECKING:
    from driftline.registry import Registry


@dataclass(frozen=True)
class Scored:
    """What was scored for drift: a landed batch (``accepted``) or a live-traffic window (``window``)."""

    origin: str
    status: BatchStatus  # accepted (a landed batch) or window (a live-traffic window)
    stored: str
    profile_path: str
    rows: int

    @property
    def source(self) -> str:
        return "traffic" if self.status == BatchStatus.WINDOW else "batch"

    @classmethod
    def batch(cls, batch: Batch, stored: str, profile: ProfileRecord) -> Scored:
        return cls(batch.origin, BatchStatus.ACCEPTED, stored, profile.path, batch.rows)

    @classmethod
    def window(cls, window: TrafficWindow, profile: ProfileRecord) -> Scored:
        origin = f"traffic window {window.start} ({window.version}, {len(window.parts)} part(s))"
        return cls(origin, BatchStatus.WINDOW, profile.path, profile.path, profile.rows)


@dataclass(frozen=True)
class BatchOutcome:
    """What the monitor did with one landed batch."""

    origin: str
    fingerprint: str
    # accepted, quarantined, duplicate, rejected (not a regular file), waiting; busy (another run has it: left for
    # later), released (a transient failure: the next run retries it); window (live traffic)
    status: str
    drifted: list[str] = field(default_factory=list)
    decision: PolicyDecision | None = None
    report_path: str | None = None
    undecided: list[str] = field(default_factory=list)  # columns too small or unscorable: never counted as fine
    reason: str | None = None  # why a landing entry was quarantined, rejected or left waiting (loop.landing.Reason)

    @classmethod
    def scored(cls, scored: Scored, drift: DriftReport, decision: PolicyDecision) -> BatchOutcome:
        return cls(
            scored.origin,
            drift.batch,
            scored.status,
            [c.column for c in drift.drifted],
            decision,
            drift.report_path,
            [c.column for c in drift.undecided()],
        )


def counts(outcomes: list[BatchOutcome]) -> dict[str, int]:
    """How many landed batches and traffic windows a monitor run handled (the payload of its heartbeat)."""
    return {
        # not a directory, nor a file another run has
        "batches": sum(o.status not in (BatchStatus.WINDOW, "rejected", "busy") for o in outcomes),
        "windows": sum(o.status == BatchStatus.WINDOW for o in outcomes),
    }


def reference_profile(
    registry: Registry, model: str, version: str, fallback: str | None, logger: Logger | LoggerAdapter[Any]
) -> str:
    """The reference profile of a version; ``fallback`` (the champion's) if the registry lacks the version."""
    try:
        return registry.version(model, version).lineage.profile_path
    except StoreError:
        if fallback is None:
            raise
        logger.warning(
            "%s: version %s served traffic but is not in the registry; using the champion's reference", model, version
        )
        return fallback


def record_quarantined(
    registry: Registry, model: str, rejected: Rejected, flow_run_id: str | None, holder: str | None = None
) -> None:
    """Record a claimed batch that failed validation as quarantined, where it is kept (only while ``holder`` holds
    the claim, if given)."""
    finished = registry.finish_batch(
        model,
        rejected.fingerprint,
        holder,
        status=BatchStatus.QUARANTINED,
        stored_path=str(rejected.kept),
        rows=rejected.rows,
        flow_run_id=flow_run_id,
    )
    _check_held(finished, model, rejected.fingerprint, holder)


def record_scored(
    registry: Registry,
    model: str,
    drift: DriftReport,
    scored: Scored,
    flow_run_id: str | None,
    holder: str | None = None,
) -> None:
    """Record a scored batch or window: its drift result, profile, report and where it is kept (only while
    ``holder`` holds the claim, if given)."""
    finished = registry.finish_batch(
        model,
        drift.batch,
        holder,
        status=scored.status,
        stored_path=scored.stored,
        rows=scored.rows,
        champion_version=drift.version,
        drift_detected=drift.detected,
        drift=drift.as_dict(),
        profile_path=scored.profile_path,
        report_path=drift.report_path,
        flow_run_id=flow_run_id,
    )
    _check_held(finished, model, drift.batch, holder)


def _check_held(finished: bool, model: str, fingerprint: str, holder: str | None) -> None:
    if holder is not None and not finished:
        raise StoreError(
            f"{model}: batch {fingerprint[:12]}: another run took this run's claim over (its lease expired while "
            "this run stalled); this run's result is not recorded"
        )
