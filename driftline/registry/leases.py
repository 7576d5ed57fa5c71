"""Leases: one holder at a time, kept in the database so they survive restarts (a retrain per model at a time)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from driftline.registry.records import Lease, from_row, now, utc
from driftline.registry.schema import leases


class Leases:
    """Named leases with an expiry; an expired lease (its holder crashed) can be taken over."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease ``name`` for ``holder``; None if someone else holds an unexpired one."""
        at = now()
        lease = Lease(name=name, holder=holder, acquired_at=at, expires_at=at + timedelta(seconds=ttl_s))
        try:
            with self.engine.begin() as connection:
                connection.execute(leases.insert().values(**vars(lease)))
            return lease
        except sa.exc.IntegrityError:
            pass
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
            if row is None or utc(row.expires_at) > at:
                return None
            # Expired (its holder crashed): take it over only if nobody else did first.
            taken = connection.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == row.holder, leases.c.acquired_at == row.acquired_at)
                .values(holder=holder, acquired_at=at, expires_at=lease.expires_at)
            )
        return lease if taken.rowcount == 1 else None

    def release(self, name: str, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))

    def get(self, name: str) -> Lease | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
        return from_row(Lease, row) if row else None
