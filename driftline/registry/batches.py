"""Monitored batches and traffic windows: a claim is a lease on a fingerprint, so a batch is processed exactly once.

Also the monitor's and the retrain flow's decisions, newest first.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from driftline.errors import StoreError
from driftline.loop.statuses import Decision
from driftline.registry.leases import holder_dead
from driftline.registry.records import (
    RECLAIMABLE,
    BatchRecord,
    BatchStatus,
    Claim,
    ClaimOutcome,
    MonitorDecision,
    from_row,
    now,
    plain_json,
    row_values,
)
from driftline.registry.schema import batches, monitor_decisions

# A claim written before leases (no holder, no expiry) is taken over this long after it was made (the old rule).
LEGACY_CLAIM_S = 3600.0


class BatchRecords:
    """Batch claims and outcomes, and monitor decisions, in one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(self, model: str, fingerprint: str, origin: str, holder: str, ttl_s: float) -> Claim:
        """Claim a batch for ``holder`` with a lease of ``ttl_s`` seconds (see :class:`Claim` for the outcomes).

        A ``processing`` claim is taken over when its holder died (same host, process gone) or its lease expired;
        while a live holder has it, the batch is ``busy``. A replayed or released batch is claimed again. Only an
        accepted or quarantined batch (or a scored window) makes the same content a ``duplicate``.
        """
        at = now()
        lease = {"holder": holder, "lease_expires_at": at + timedelta(seconds=ttl_s)}
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    batches.insert().values(
                        model=model,
                        fingerprint=fingerprint,
                        origin=origin,
                        status=str(BatchStatus.PROCESSING),
                        claimed_at=at,
                        **lease,
                    )
                )
            return Claim(ClaimOutcome.CLAIMED, holder)
        except sa.exc.IntegrityError:
            pass
        existing = self.get(model, fingerprint)
        if existing is None:  # rows are never deleted: an insert that failed for another reason
            return Claim(ClaimOutcome.BUSY, holder)
        if existing.status not in RECLAIMABLE:
            return Claim(ClaimOutcome.DUPLICATE, holder, existing)
        outcome = ClaimOutcome.CLAIMED
        if existing.status == BatchStatus.PROCESSING:
            if not (lease_expired(existing, at) or holder_dead(existing.holder)):
                return Claim(ClaimOutcome.BUSY, holder, existing)
            outcome = ClaimOutcome.TAKEN_OVER
        with self.engine.begin() as connection:
            # Compare-and-set on the row as read: of two runs taking over the same batch, one wins.
            taken = connection.execute(
                batches.update()
                .where(
                    batches.c.model == model,
                    batches.c.fingerprint == fingerprint,
                    batches.c.status == str(existing.status),
                    batches.c.claimed_at == existing.claimed_at,
                )
                .values(claimed_at=at, origin=origin, status=str(BatchStatus.PROCESSING), processed_at=None, **lease)
            )
        return Claim(outcome if taken.rowcount == 1 else ClaimOutcome.BUSY, holder, existing)

    def renew(self, model: str, fingerprint: str, holder: str, ttl_s: float) -> bool:
        """Push the claim's lease ``ttl_s`` from now; False if ``holder`` no longer holds it (it was taken over)."""
        with self.engine.begin() as connection:
            renewed = connection.execute(
                self._held(model, fingerprint, holder).values(lease_expires_at=now() + timedelta(seconds=ttl_s))
            )
        return bool(renewed.rowcount == 1)

    def give_back(self, model: str, fingerprint: str, holder: str) -> bool:
        """Release a claim after a transient failure (status ``released``): the next claim takes the batch at once.

        False if ``holder`` no longer holds it. The holder stays on the row, so on-call sees which run gave it back.
        """
        with self.engine.begin() as connection:
            released = connection.execute(
                self._held(model, fingerprint, holder).values(
                    status=str(BatchStatus.RELEASED), lease_expires_at=None, processed_at=now()
                )
            )
        return bool(released.rowcount == 1)

    def _held(self, model: str, fingerprint: str, holder: str) -> sa.Update:
        return batches.update().where(
            batches.c.model == model,
            batches.c.fingerprint == fingerprint,
            batches.c.holder == holder,
            batches.c.status == str(BatchStatus.PROCESSING),
        )

    def release(self, model: str, fingerprint: str) -> bool:
        """Let a quarantined batch be claimed again (after a replay); False if it is not quarantined here.

        The row stays, marked ``replayed``, so the registry still shows the batch was quarantined once.
        """
        with self.engine.begin() as connection:
            released = connection.execute(
                batches.update()
                .where(
                    batches.c.model == model,
                    batches.c.fingerprint == fingerprint,
                    batches.c.status == str(BatchStatus.QUARANTINED),
                )
                .values(status=str(BatchStatus.REPLAYED), processed_at=now())
            )
        return bool(released.rowcount == 1)

    def finish(self, model: str, fingerprint: str, values: dict[str, Any], holder: str | None = None) -> bool:
        """Record the outcome of a claimed batch: the columns in ``values`` (status, stored path, drift...).

        With ``holder``, only while that holder still has the claim (False, and nothing written, if it was taken
        over); the lease ends with it.
        """
        unknown = sorted(set(values) - set(batches.c.keys()))
        if unknown:
            raise StoreError(f"{model}: finish_batch got {', '.join(unknown)}; expected columns of the batches table")
        if "status" in values:
            values["status"] = str(BatchStatus(values["status"]))
        drift = values.get("drift")
        if drift is not None:
            values["drift"] = plain_json(drift if isinstance(drift, dict) else drift.as_dict())
        if holder is None:
            update = batches.update().where(batches.c.model == model, batches.c.fingerprint == fingerprint)
        else:
            update = self._held(model, fingerprint, holder)
        with self.engine.begin() as connection:
            finished = connection.execute(update.values(processed_at=now(), lease_expires_at=None, **values))
        return bool(finished.rowcount == 1)

    def get(self, model: str, fingerprint: str) -> BatchRecord | None:
        query = sa.select(batches).where(batches.c.model == model, batches.c.fingerprint == fingerprint)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _batch(row) if row else None

    def find(
        self, model: str, status: BatchStatus | tuple[BatchStatus, ...] | None, limit: int | None
    ) -> list[BatchRecord]:
        """Batches (and scored traffic windows) of a model, newest first."""
        query = sa.select(batches).where(batches.c.model == model)
        if status is not None:
            wanted = (status,) if isinstance(status, str) else status
            query = query.where(batches.c.status.in_([str(s) for s in wanted]))
        query = query.order_by(batches.c.processed_at.desc(), batches.c.claimed_at.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [_batch(row) for row in connection.execute(query).all()]

    def record_decision(
        self, model: str, decision: Decision, reason: str, fingerprint: str | None, flow_run_id: str | None
    ) -> MonitorDecision:
        record = MonitorDecision(
            id=0,  # the database assigns it
            model=model,
            fingerprint=fingerprint,
            decision=Decision(decision),
            reason=reason,
            flow_run_id=flow_run_id,
            at=now(),
        )
        with self.engine.begin() as connection:
            inserted = connection.execute(monitor_decisions.insert().values(row_values(record))).inserted_primary_key
        return replace(record, id=int(inserted[0]) if inserted else 0)

    def decisions(self, model: str, limit: int, decision: Decision | None) -> list[MonitorDecision]:
        """Monitor and retrain decisions of a model, newest first."""
        query = sa.select(monitor_decisions).where(monitor_decisions.c.model == model)
        if decision is not None:
            query = query.where(monitor_decisions.c.decision == str(decision))
        query = query.order_by(monitor_decisions.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [from_row(MonitorDecision, row, decision=_parse(Decision, row.decision, row)) for row in rows]


def lease_expired(record: BatchRecord, at: datetime) -> bool:
    """Whether a ``processing`` claim's lease ran out at ``at`` (a claim from before leases: an hour after it)."""
    expires = record.lease_expires_at or record.claimed_at + timedelta(seconds=LEGACY_CLAIM_S)
    return expires <= at


def _batch(row: Any) -> BatchRecord:
    """A batch row with its status and its drift report parsed."""
    from driftline.monitoring.drift import DriftReport  # numpy and the profiles behind it: only when read

    try:
        drift = DriftReport.from_dict(row.drift) if row.drift is not None else None
    except (KeyError, TypeError, ValueError) as error:
        raise StoreError(
            f"{row.model}: batch {row.fingerprint}: the registry's drift result does not read as a DriftReport "
            f"(expected the keys of DriftReport.as_dict(); {type(error).__name__}: {error})"
        ) from None
    return from_row(BatchRecord, row, status=_parse(BatchStatus, row.status, row), drift=drift)


def _parse(kind: type[BatchStatus] | type[Decision], value: str, row: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(kind)
        raise StoreError(
            f"{row.model}: the registry holds {kind.__name__} {value!r}; expected one of {known}"
        ) from None
