"""Model versions and their lineage, champions, promotion by compare-and-set, the ledger, and gate decisions.

The ledger is append-only: this module inserts into it and never updates or deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pydantic
import sqlalchemy as sa

from driftline.errors import NotPromotable, PromotionConflict, StoreError
from driftline.loop.lineage import Lineage
from driftline.registry.records import (
    Champion,
    Check,
    CheckRecord,
    CheckStatus,
    GateRecord,
    LedgerEntry,
    VersionRecord,
    from_row,
    now,
    plain_json,
    row_values,
    unmet,
)
from driftline.registry.schema import champions, gate_decisions, ledger, version_checks, versions
from driftline.settings import pause_at

CheckResult = tuple[Check, CheckStatus, str]


class ModelRecords:
    """Versions, champions, the ledger and gate decisions of every model in one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def champion(self, model: str) -> Champion | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(champions).where(champions.c.model == model)).first()
        return from_row(Champion, row) if row else None

    def record_version(
        self, model: str, version: str, tag: str, lineage: Lineage, checks: Sequence[CheckResult] = ()
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                versions.insert().values(
                    model=model, version=version, tag=tag, created_at=now(), lineage=plain_json(lineage.as_dict())
                )
            )
            for check, status, detail in checks:
                connection.execute(_check_row(model, version, check, status, detail))

    def record_files(self, model: str, version: str, files: dict[str, str], detail: str) -> None:
        """Record the digests of a version packaged before they were recorded, and its digests check."""
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(versions.c.lineage).where(versions.c.model == model, versions.c.version == version)
            ).first()
            if row is None:
                raise StoreError(f"{model}:{version}: no such version in the registry")
            lineage = {**dict(row.lineage), "model_files": files}
            connection.execute(
                versions.update()
                .where(versions.c.model == model, versions.c.version == version)
                .values(lineage=plain_json(lineage))
            )
            connection.execute(_check_row(model, version, Check.DIGESTS, CheckStatus.PASSED, detail))

    def record_check(self, model: str, version: str, check: Check, status: CheckStatus, detail: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(_check_row(model, version, check, status, detail))

    def checks(self, model: str, version: str, connection: sa.Connection | None = None) -> list[CheckRecord]:
        query = (
            sa.select(version_checks)
            .where(version_checks.c.model == model, version_checks.c.version == version)
            .order_by(version_checks.c.id)
        )
        if connection is None:
            with self.engine.connect() as own:
                rows = own.execute(query).all()
        else:
            rows = connection.execute(query).all()
        return [from_row(CheckRecord, row, check=Check(row.check), status=CheckStatus(row.status)) for row in rows]

    def versions(self, model: str) -> list[VersionRecord]:
        query = sa.select(versions).where(versions.c.model == model).order_by(versions.c.created_at.desc())
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_version(row) for row in rows]

    def version(self, model: str, version: str) -> VersionRecord:
        query = sa.select(versions).where(versions.c.model == model, versions.c.version == version)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            known = ", ".join(v.version for v in self.versions(model)) or "none"
            raise StoreError(f"{model}:{version}: no such version in the registry (versions: {known})")
        return _version(row)

    def record_gate(
        self, model: str, accepted: bool, reason: str, evidence: dict[str, Any], flow_run_id: str | None
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                gate_decisions.insert().values(
                    model=model,
                    accepted=accepted,
                    reason=reason,
                    evidence=plain_json(evidence),
                    flow_run_id=flow_run_id,
                    at=now(),
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
            return [from_row(GateRecord, row) for row in connection.execute(query).all()]

    def promote(
        self,
        model: str,
        version: str,
        expected: str | None,
        *,
        actor: str,
        reason: str,
        evidence: dict[str, Any],
        flow_run_id: str | None,
        action: str,
        force: bool = False,
    ) -> LedgerEntry:
        """Make ``version`` champion if the champion is still ``expected``; record it in the ledger atomically.

        Unless ``force``, the version must have passed every required check (read in the same transaction).
        """
        entry = LedgerEntry(
            id=0,  # the database assigns it
            model=model,
            action=action,
            from_version=expected,
            to_version=version,
            actor=actor,
            reason=reason,
            evidence=plain_json(evidence),
            flow_run_id=flow_run_id,
            at=now(),
        )
        at = entry.at
        try:
            with self.engine.begin() as connection:
                missing = unmet(self.checks(model, version, connection))
                if missing and not force:
                    raise NotPromotable(
                        f"{model}:{version} is not promotable: {'; '.join(missing)}. Nothing changed; only a "
                        f"version that passed every check can be champion (on-call can override: "
                        f"`driftline rollback {model} --to {version} --force --reason ...`, recorded in the ledger)"
                    )
                if expected is None:
                    connection.execute(champions.insert().values(model=model, version=version, since=at))
                else:
                    moved = connection.execute(
                        champions.update()
                        .where(champions.c.model == model, champions.c.version == expected)
                        .values(version=version, since=at)
                    )
                    if moved.rowcount != 1:
                        raise _Lost()
                inserted = connection.execute(ledger.insert().values(row_values(entry))).inserted_primary_key
                pause_at("train.promoting")  # kill tests: inside the transaction, champion and ledger not committed
        except (_Lost, sa.exc.IntegrityError):
            current = self.champion(model)
            raise PromotionConflict(
                f"{model}: champion changed since this run began (expected {expected or 'no champion'}, "
                f"found {current.version if current else 'no champion'}); {version} was not promoted"
            ) from None
        return replace(entry, id=int(inserted[0]) if inserted else 0)

    def ledger(self, model: str) -> list[LedgerEntry]:
        query = sa.select(ledger).where(ledger.c.model == model).order_by(ledger.c.id)
        with self.engine.connect() as connection:
            return [from_row(LedgerEntry, row) for row in connection.execute(query).all()]


def _check_row(model: str, version: str, check: Check, status: CheckStatus, detail: str) -> sa.Insert:
    return version_checks.insert().values(
        model=model, version=version, check=str(check), status=str(status), detail=detail, at=now()
    )


def _version(row: Any) -> VersionRecord:
    """A version row with its lineage parsed; lineages stored by older driftline lack only defaulted fields."""
    try:
        lineage = Lineage.model_validate(row.lineage)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        message = f"{row.model}:{row.version}: the registry's lineage does not read as a Lineage: {problems}"
        raise StoreError(message) from None
    return from_row(VersionRecord, row, lineage=lineage)


class _Lost(Exception):
    """Internal: the compare-and-set matched no row."""
