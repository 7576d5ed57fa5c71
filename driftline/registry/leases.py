"""Leases: one holder at a time, kept in the database so they survive restarts (a retrain per model at a time).

A holder names its process: ``host:pid:flow-run`` (:func:`holder_for`). A lease, and a batch claim, is taken over
when it expired or when its holder is dead: on this host, and its process is gone (:func:`holder_dead`). A holder
on another host is trusted until its lease expires; a holder that is alive here is never overtaken before then.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

from driftline.registry.records import Lease, from_row, now, utc
from driftline.registry.schema import leases

logger = logging.getLogger("driftline")


def holder_for(run_id: str | None = None) -> str:
    """This process as a lease holder: ``host:pid:flow-run`` (``-`` outside a flow run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id or '-'}"[:200]


def holder_dead(holder: str | None) -> bool:
    """True only when ``holder`` ran on this host and its process is gone; False when that cannot be told."""
    host, _, rest = (holder or "").partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not process_alive(int(pid))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs here; a zombie (killed, not yet reaped by its parent) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal said it exists
    return state not in ("Z", "X")


class Leases:
    """Named leases with an expiry; an expired lease, or one whose holder died, can be taken over."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease ``name`` for ``holder``; None if a live holder has an unexpired one."""
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
            if row is None or (utc(row.expires_at) > at and not holder_dead(row.holder)):
                return None
            # Expired, or its holder died: take it over only if nobody else did first.
            taken = connection.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == row.holder, leases.c.acquired_at == row.acquired_at)
                .values(holder=holder, acquired_at=at, expires_at=lease.expires_at)
            )
        return lease if taken.rowcount == 1 else None

    def renew(self, name: str, holder: str, ttl_s: float) -> bool:
        """Push the lease's expiry ``ttl_s`` from now; False if ``holder`` no longer holds it."""
        with self.engine.begin() as connection:
            renewed = connection.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=now() + timedelta(seconds=ttl_s))
            )
        return bool(renewed.rowcount == 1)

    def release(self, name: str, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))

    def get(self, name: str) -> Lease | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
        return from_row(Lease, row) if row else None


class Renewer:
    """Renew a lease from a background thread every ``every_s`` seconds while the ``with`` block runs.

    ``renew`` returns False once the lease is gone (taken over after this process stalled past its expiry): the
    renewer stops and :attr:`lost` is set, so the work can refuse to record its result. A failed renewal (the
    database briefly unreachable) is logged and tried again at the next tick; the lease's expiry leaves room for
    two misses.
    """

    def __init__(self, renew: Callable[[], bool], every_s: float, what: str) -> None:
        self._renew = renew
        self.every_s = every_s
        self.what = what
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-renewer {what}", daemon=True)

    def __enter__(self) -> Renewer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                if not self._renew():
                    self.lost = True
                    logger.warning(
                        "%s: another run took the lease over; this run will not record its result", self.what
                    )
                    return
            except Exception as error:  # the next tick tries again; the expiry allows for it
                logger.warning("%s: cannot renew the lease (will retry): %s", self.what, error)
