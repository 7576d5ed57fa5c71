"""What the registry returns: frozen records, one per table, and the statuses stored in them.

Rows become records by field name (:func:`from_row`): a record's fields are its table's columns, and a column read
back as something richer (a lineage, a drift report, a status) is parsed once here, so callers never index dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from driftline.loop.lineage import Lineage
from driftline.loop.statuses import GOOD as GOOD

# Batch statuses are defined beside the batch (the monitor's logic reads them); the registry stores them.
from driftline.loop.statuses import RECLAIMABLE as RECLAIMABLE
from driftline.loop.statuses import REQUIRED_CHECKS as REQUIRED_CHECKS
from driftline.loop.statuses import SCORED as SCORED
from driftline.loop.statuses import BatchStatus as BatchStatus
from driftline.loop.statuses import Check as Check
from driftline.loop.statuses import CheckStatus as CheckStatus
from driftline.loop.statuses import Decision as Decision

if TYPE_CHECKING:
    from driftline.monitoring.drift import DriftReport  # numpy and the profiles behind it load on first read


@dataclass(frozen=True)
class Champion:
    model: str
    version: str
    since: datetime


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    tag: str
    created_at: datetime
    lineage: Lineage


@dataclass(frozen=True)
class CheckRecord:
    """One check of one version; the latest record of a check is the one that counts."""

    id: int
    model: str
    version: str
    check: Check
    status: CheckStatus
    detail: str
    at: datetime


def unmet(checks: list[CheckRecord]) -> list[str]:
    """Each required check a version has not passed: ``servability failed: <detail>`` or ``gate not recorded``."""
    latest = {record.check: record for record in sorted(checks, key=lambda record: record.id)}
    problems = []
    for check in REQUIRED_CHECKS:
        record = latest.get(check)
        if record is None:
            problems.append(f"{check} not recorded (never run, or did not finish)")
        elif record.status not in GOOD:
            problems.append(f"{check} {record.status}: {record.detail}")
    return problems


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    model: str
    action: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    evidence: dict[str, Any]
    flow_run_id: str | None
    at: datetime


@dataclass(frozen=True)
class GateRecord:
    id: int
    model: str
    accepted: bool
    reason: str
    evidence: dict[str, Any]
    flow_run_id: str | None
    at: datetime


@dataclass(frozen=True)
class BatchRecord:
    model: str
    fingerprint: str
    origin: str
    status: BatchStatus
    stored_path: str | None
    rows: int | None
    champion_version: str | None
    drift_detected: bool | None
    drift: DriftReport | None
    profile_path: str | None
    report_path: str | None
    flow_run_id: str | None
    claimed_at: datetime
    processed_at: datetime | None
    holder: str | None  # who holds (or last held) the claim: host:pid:flow run; None in rows from before leases
    lease_expires_at: datetime | None  # until when a ``processing`` claim is held unless renewed


@dataclass(frozen=True)
class MonitorDecision:
    id: int
    model: str
    fingerprint: str | None
    decision: Decision
    reason: str
    flow_run_id: str | None
    at: datetime


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


class ClaimOutcome(StrEnum):
    """What claiming a batch found."""

    CLAIMED = "claimed"  # new, or released by a replay or a transient failure: this run processes it
    TAKEN_OVER = "taken_over"  # a claim whose holder died or whose lease expired: this run processes it
    BUSY = "busy"  # a live holder has it: left for later, not moved
    DUPLICATE = "duplicate"  # the same content was already accepted or quarantined


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim; true when this run holds the batch now. ``previous`` is the row as it was found."""

    outcome: ClaimOutcome
    holder: str
    previous: BatchRecord | None = None

    def __bool__(self) -> bool:
        return self.outcome in (ClaimOutcome.CLAIMED, ClaimOutcome.TAKEN_OVER)


Record = TypeVar("Record")


def from_row(record: type[Record], row: Any, **parsed: Any) -> Record:
    """Build ``record`` from a row by field name; ``parsed`` gives the fields read as richer types.

    Datetimes come back in UTC (SQLite drops the zone) and JSON objects as plain dicts.
    """
    values = dict(parsed)
    for field in fields(record):  # type: ignore[arg-type]
        if field.name in values:
            continue
        value = row._mapping[field.name]
        if isinstance(value, datetime):
            value = utc(value)
        elif isinstance(value, dict):
            value = dict(value)
        values[field.name] = value
    return record(**values)


def row_values(record: Any) -> dict[str, Any]:
    """A new record's values for its table's insert: enums as their text; ``id`` left to the database."""
    values = {field.name: getattr(record, field.name) for field in fields(record) if field.name != "id"}
    return {name: str(value) if isinstance(value, StrEnum) else value for name, value in values.items()}


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON, so paths, datetimes and numpy scalars become plain JSON before they are stored."""
    return dict(json.loads(json.dumps(value, default=str)))
