"""The registry: which version is champion, every packaged version's lineage, gate decisions, and the ledger.

SQLite under the state directory by default; any SQLAlchemy URL (e.g. PostgreSQL) by configuration. Promotion is
compare-and-set: it names the champion the run started from and fails if another run moved it since. The ledger
is append-only: this module inserts into it and never updates or deletes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftline.errors import PromotionConflict, StoreError

metadata = sa.MetaData()

champions = sa.Table(
    "champions",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(200), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(200), primary_key=True),
    sa.Column("tag", sa.String(400), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
)
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("from_version", sa.String(200)),
    sa.Column("to_version", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
gate_decisions = sa.Table(
    "gate_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


batches = sa.Table(
    "batches",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("origin", sa.Text, nullable=False),
    # processing, accepted, quarantined, replayed (released by `driftline replay`: the next claim takes it); or
    # window: a live-traffic window's profile (fingerprint window:<v>:<start>)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("stored_path", sa.Text),
    sa.Column("rows", sa.Integer),
    sa.Column("champion_version", sa.String(200)),
    sa.Column("drift_detected", sa.Boolean),
    sa.Column("drift", sa.JSON),
    sa.Column("profile_path", sa.Text),
    sa.Column("report_path", sa.Text),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
)
monitor_decisions = sa.Table(
    "monitor_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("decision", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class BatchRecord:
    model: str
    fingerprint: str
    origin: str
    status: str
    stored_path: str | None
    rows: int | None
    champion_version: str | None
    drift_detected: bool | None
    drift: dict[str, Any] | None
    profile_path: str | None
    report_path: str | None
    flow_run_id: str | None
    claimed_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True)
class MonitorDecision:
    id: int
    model: str
    fingerprint: str | None
    decision: str
    reason: str
    flow_run_id: str | None
    at: datetime


def _batch(row: Any) -> BatchRecord:
    return BatchRecord(
        row.model,
        row.fingerprint,
        row.origin,
        row.status,
        row.stored_path,
        row.rows,
        row.champion_version,
        row.drift_detected,
        dict(row.drift) if row.drift is not None else None,
        row.profile_path,
        row.report_path,
        row.flow_run_id,
        _utc(row.claimed_at),
        _utc(row.processed_at) if row.processed_at else None,
    )


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
    lineage: dict[str, Any]


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


def _now() -> datetime:
    return datetime.now(UTC)


def _json(value: dict[str, Any]) -> dict[str, Any]:
    # Round-trip so paths, datetimes and numpy scalars become plain JSON before they reach the database.
    return dict(json.loads(json.dumps(value, default=str)))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Registry:
    """Champion pointers, versions, gate decisions and the promotion ledger in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url)
            metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(f"registry {self.safe_url}: cannot open: {error}") from error

    @property
    def safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def champion(self, model: str) -> Champion | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(champions).where(champions.c.model == model)).first()
        return Champion(row.model, row.version, _utc(row.since)) if row else None

    def record_version(self, model: str, version: str, tag: str, lineage: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                versions.insert().values(
                    model=model, version=version, tag=tag, created_at=_now(), lineage=_json(lineage)
                )
            )

    def versions(self, model: str) -> list[VersionRecord]:
        query = sa.select(versions).where(versions.c.model == model).order_by(versions.c.created_at.desc())
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [VersionRecord(r.model, r.version, r.tag, _utc(r.created_at), dict(r.lineage)) for r in rows]

    def version(self, model: str, version: str) -> VersionRecord:
        query = sa.select(versions).where(versions.c.model == model, versions.c.version == version)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            known = ", ".join(v.version for v in self.versions(model)) or "none"
            raise StoreError(f"{model}:{version}: no such version in the registry (versions: {known})")
        return VersionRecord(row.model, row.version, row.tag, _utc(row.created_at), dict(row.lineage))

    def record_gate(
        self, model: str, accepted: bool, reason: str, evidence: dict[str, Any], flow_run_id: str | None
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                gate_decisions.insert().values(
                    model=model,
                    accepted=accepted,
                    reason=reason,
                    evidence=_json(evidence),
                    flow_run_id=flow_run_id,
                    at=_now(),
                )
            )

    def gate_decisions(self, model: str, limit: int = 10) -> list[GateRecord]:
        query = (
            sa.select(gate_decisions)
            .where(gate_decisions.c.model == model)
            .order_by(gate_decisions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            GateRecord(r.id, r.model, r.accepted, r.reason, dict(r.evidence), r.flow_run_id, _utc(r.at)) for r in rows
        ]

    def promote(
        self,
        model: str,
        version: str,
        expected: str | None,
        *,
        actor: str,
        reason: str,
        evidence: dict[str, Any],
        flow_run_id: str | None = None,
        action: str = "promote",
    ) -> LedgerEntry:
        """Make ``version`` champion if the champion is still ``expected``; record it in the ledger atomically."""
        now = _now()
        try:
            with self.engine.begin() as connection:
                if expected is None:
                    connection.execute(champions.insert().values(model=model, version=version, since=now))
                else:
                    moved = connection.execute(
                        champions.update()
                        .where(champions.c.model == model, champions.c.version == expected)
                        .values(version=version, since=now)
                    )
                    if moved.rowcount != 1:
                        raise _Lost()
                inserted = connection.execute(
                    ledger.insert().values(
                        model=model,
                        action=action,
                        from_version=expected,
                        to_version=version,
                        actor=actor,
                        reason=reason,
                        evidence=_json(evidence),
                        flow_run_id=flow_run_id,
                        at=now,
                    )
                ).inserted_primary_key
                entry_id = int(inserted[0]) if inserted else 0
        except (_Lost, sa.exc.IntegrityError):
            current = self.champion(model)
            raise PromotionConflict(
                f"{model}: champion changed since this run began (expected {expected or 'no champion'}, "
                f"found {current.version if current else 'no champion'}); {version} was not promoted"
            ) from None
        return LedgerEntry(entry_id, model, action, expected, version, actor, reason, _json(evidence), flow_run_id, now)

    def ledger(self, model: str) -> list[LedgerEntry]:
        query = sa.select(ledger).where(ledger.c.model == model).order_by(ledger.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            LedgerEntry(
                r.id,
                r.model,
                r.action,
                r.from_version,
                r.to_version,
                r.actor,
                r.reason,
                dict(r.evidence),
                r.flow_run_id,
                _utc(r.at),
            )
            for r in rows
        ]

    # -- monitored batches: each fingerprint is claimed once, so a batch is never processed twice ------------

    def claim_batch(self, model: str, fingerprint: str, origin: str, stale_after_s: float = 3600.0) -> bool:
        """Claim a batch for processing; False if it was processed, or is being processed, by another run.

        A claim left in 'processing' for longer than ``stale_after_s`` (a crashed run) can be taken over, and so can
        a batch released by a replay.
        """
        now = _now()
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    batches.insert().values(
                        model=model, fingerprint=fingerprint, origin=origin, status="processing", claimed_at=now
                    )
                )
            return True
        except sa.exc.IntegrityError:
            pass
        existing = self.batch(model, fingerprint)
        if existing is None or existing.status not in ("processing", "replayed"):
            return False
        if existing.status == "processing" and (now - existing.claimed_at).total_seconds() < stale_after_s:
            return False
        with self.engine.begin() as connection:
            # Compare-and-set on the row as read: of two runs taking over the same batch, one wins.
            taken = connection.execute(
                batches.update()
                .where(
                    batches.c.model == model,
                    batches.c.fingerprint == fingerprint,
                    batches.c.status == existing.status,
                    batches.c.claimed_at == existing.claimed_at,
                )
                .values(claimed_at=now, origin=origin, status="processing", processed_at=None)
            )
        return bool(taken.rowcount == 1)

    def release_batch(self, model: str, fingerprint: str) -> bool:
        """Let a quarantined batch be claimed again (after a replay); False if it is not quarantined here.

        The row stays, marked ``replayed``, so the registry still shows the batch was quarantined once.
        """
        with self.engine.begin() as connection:
            released = connection.execute(
                batches.update()
                .where(
                    batches.c.model == model,
                    batches.c.fingerprint == fingerprint,
                    batches.c.status == "quarantined",
                )
                .values(status="replayed", processed_at=_now())
            )
        return bool(released.rowcount == 1)

    def finish_batch(self, model: str, fingerprint: str, **values: Any) -> None:
        """Record the outcome of a claimed batch (status, stored path, drift, report...)."""
        if "drift" in values and values["drift"] is not None:
            values["drift"] = _json(values["drift"])
        with self.engine.begin() as connection:
            connection.execute(
                batches.update()
                .where(batches.c.model == model, batches.c.fingerprint == fingerprint)
                .values(processed_at=_now(), **values)
            )

    def batch(self, model: str, fingerprint: str) -> BatchRecord | None:
        query = sa.select(batches).where(batches.c.model == model, batches.c.fingerprint == fingerprint)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _batch(row) if row else None

    def batches(
        self, model: str, status: str | tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[BatchRecord]:
        """Batches (and scored traffic windows) of a model, newest first."""
        query = sa.select(batches).where(batches.c.model == model)
        if status is not None:
            query = query.where(batches.c.status.in_((status,) if isinstance(status, str) else status))
        query = query.order_by(batches.c.processed_at.desc(), batches.c.claimed_at.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [_batch(row) for row in connection.execute(query).all()]

    def record_decision(
        self, model: str, decision: str, reason: str, fingerprint: str | None = None, flow_run_id: str | None = None
    ) -> MonitorDecision:
        now = _now()
        with self.engine.begin() as connection:
            inserted = connection.execute(
                monitor_decisions.insert().values(
                    model=model,
                    fingerprint=fingerprint,
                    decision=decision,
                    reason=reason,
                    flow_run_id=flow_run_id,
                    at=now,
                )
            ).inserted_primary_key
        return MonitorDecision(
            int(inserted[0]) if inserted else 0, model, fingerprint, decision, reason, flow_run_id, now
        )

    def decisions(self, model: str, limit: int = 20, decision: str | None = None) -> list[MonitorDecision]:
        """Monitor and retrain decisions of a model, newest first."""
        query = sa.select(monitor_decisions).where(monitor_decisions.c.model == model)
        if decision is not None:
            query = query.where(monitor_decisions.c.decision == decision)
        query = query.order_by(monitor_decisions.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            MonitorDecision(r.id, r.model, r.fingerprint, r.decision, r.reason, r.flow_run_id, _utc(r.at)) for r in rows
        ]

    # -- leases: one holder at a time, kept in the database so they survive restarts --------------------------

    def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease ``name`` for ``holder``; None if someone else holds an unexpired one."""
        from datetime import timedelta

        now = _now()
        expires = now + timedelta(seconds=ttl_s)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    leases.insert().values(name=name, holder=holder, acquired_at=now, expires_at=expires)
                )
            return Lease(name, holder, now, expires)
        except sa.exc.IntegrityError:
            pass
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
            if row is None or _utc(row.expires_at) > now:
                return None
            # Expired (its holder crashed): take it over only if nobody else did first.
            taken = connection.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == row.holder, leases.c.acquired_at == row.acquired_at)
                .values(holder=holder, acquired_at=now, expires_at=expires)
            )
        return Lease(name, holder, now, expires) if taken.rowcount == 1 else None

    def release(self, name: str, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))

    def lease(self, name: str) -> Lease | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
        return Lease(row.name, row.holder, _utc(row.acquired_at), _utc(row.expires_at)) if row else None


class _Lost(Exception):
    """Internal: the compare-and-set matched no row."""


_open: dict[str, Registry] = {}


def open_registry(url: str | None = None) -> Registry:
    """The registry at ``url`` (default: from the settings), one engine per URL per process."""
    from driftline.settings import get_settings

    url = url or get_settings().registry
    if url not in _open:
        _open[url] = Registry(url)
    return _open[url]
