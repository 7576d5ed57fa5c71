"""Monitored batches and traffic windows: each fingerprint is claimed once, so a batch is never processed twice.

Also the monitor's and the retrain flow's decisions, newest first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from driftline.errors import StoreError
from driftline.loop.statuses import Decision
from driftline.registry.records import (
    RECLAIMABLE,
    BatchRecord,
    BatchStatus,
    MonitorDecision,
    from_row,
    now,
    plain_json,
    row_values,
)
from driftline.registry.schema import batches, monitor_decisions


class BatchRecords:
    """Batch claims and outcomes, and monitor decisions, in one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(self, model: str, fingerprint: str, origin: str, stale_after_s: float) -> bool:
        """Claim a batch for processing; False if it was processed, or is being processed, by another run.

        A claim left in ``processing`` for longer than ``stale_after_s`` (a crashed run) can be taken over, and so
        can a batch released by a replay.
        """
        at = now()
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    batches.insert().values(
                        model=model,
                        fingerprint=fingerprint,
                        origin=origin,
                        status=str(BatchStatus.PROCESSING),
                        claimed_at=at,
                    )
                )
            return True
        except sa.exc.IntegrityError:
            pass
        existing = self.get(model, fingerprint)
        if existing is None or existing.status not in RECLAIMABLE:
            return False
        if existing.status == BatchStatus.PROCESSING and (at - existing.claimed_at).total_seconds() < stale_after_s:
            return False
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
                .values(claimed_at=at, origin=origin, status=str(BatchStatus.PROCESSING), processed_at=None)
            )
        return bool(taken.rowcount == 1)

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

    def finish(self, model: str, fingerprint: str, values: dict[str, Any]) -> None:
        """Record the outcome of a claimed batch: the columns in ``values`` (status, stored path, drift...)."""
        unknown = sorted(set(values) - set(batches.c.keys()))
        if unknown:
            raise StoreError(f"{model}: finish_batch got {', '.join(unknown)}; expected columns of the batches table")
        if "status" in values:
            values["status"] = str(BatchStatus(values["status"]))
        drift = values.get("drift")
        if drift is not None:
            values["drift"] = plain_json(drift if isinstance(drift, dict) else drift.as_dict())
        with self.engine.begin() as connection:
            connection.execute(
                batches.update()
                .where(batches.c.model == model, batches.c.fingerprint == fingerprint)
                .values(processed_at=now(), **values)
            )

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
