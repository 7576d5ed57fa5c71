"""Leases: one holder at a time, kept in the database so they survive restarts (a retrain per model at a time).

A holder names its process: ``host:pid:flow-run`` (:func:`holder_for`). A lease, and a batch claim, is taken over
when it expired or when its holder is dead: on this host, and its process is gone (:func:`holder_dead`). A holder
on another host is trusted until its lease expires; a holder that is alive here is never overtaken before then.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from driftline.libs import lazy_module
from driftline.registry.records import Claim, Lease, from_row, now, utc

if TYPE_CHECKING:
    import sqlalchemy as sa

    from driftline.registry import Registry, schema
else:
    sa = lazy_module("sqlalchemy")
    schema = lazy_module("driftline.registry.schema")  # the tables import SQLAlchemy

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
                connection.execute(schema.leases.insert().values(**vars(lease)))
            return lease
        except sa.exc.IntegrityError:
            pass
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(schema.leases).where(schema.leases.c.name == name)).first()
            if row is None or (utc(row.expires_at) > at and not holder_dead(row.holder)):
                return None
            # Expired, or its holder died: take it over only if nobody else did first.
            taken = connection.execute(
                schema.leases.update()
                .where(
                    schema.leases.c.name == name,
                    schema.leases.c.holder == row.holder,
                    schema.leases.c.acquired_at == row.acquired_at,
                )
                .values(holder=holder, acquired_at=at, expires_at=lease.expires_at)
            )
        return lease if taken.rowcount == 1 else None

    def renew(self, name: str, holder: str, ttl_s: float) -> bool:
        """Push the lease's expiry ``ttl_s`` from now; False if ``holder`` no longer holds it."""
        with self.engine.begin() as connection:
            renewed = connection.execute(
                schema.leases.update()
                .where(schema.leases.c.name == name, schema.leases.c.holder == holder)
                .values(expires_at=now() + timedelta(seconds=ttl_s))
            )
        return bool(renewed.rowcount == 1)

    def release(self, name: str, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                schema.leases.delete().where(schema.leases.c.name == name, schema.leases.c.holder == holder)
            )

    def get(self, name: str) -> Lease | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(schema.leases).where(schema.leases.c.name == name)).first()
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


def file_lease_name(model: str, path: str) -> str:
    """The lease on one landing file, by its path (hashed: a path can outgrow the lease name's 200 characters)."""
    return f"landing:{model}:{hashlib.sha256(path.encode()).hexdigest()[:40]}"


class Hold:
    """One run's hold on one landing file: a lease on its path, then the claim on its content, renewed together.

    Taken before the file is read, so reading, quarantine and scoring all happen under it; a second monitor finds
    the file ``busy`` and leaves it. :meth:`close` stops the renewer and gives the file's lease back (the content
    claim ends when its outcome is recorded, or :meth:`give_back` after a transient failure).
    """

    def __init__(self, registry: Registry, model: str, path: str, holder: str, ttl_s: float) -> None:
        self.registry = registry
        self.model = model
        self.path = path
        self.holder = holder
        self.ttl_s = ttl_s
        self.fingerprint: str | None = None
        self._claim_open = False
        self._renewer = Renewer(self._renew, ttl_s / 3, path)

    @classmethod
    def take(cls, registry: Registry, model: str, path: str, holder: str, ttl_s: float) -> Hold | None:
        """Lease the file at ``path`` and start renewing; None if a live holder (another monitor) has it."""
        if registry.acquire(file_lease_name(model, path), holder, ttl_s) is None:
            return None
        hold = cls(registry, model, path, holder, ttl_s)
        hold._renewer.__enter__()
        return hold

    def claim(self, fingerprint: str, origin: str) -> Claim:
        """Claim the file's content; while it is claimed, the renewer keeps the claim's lease too."""
        claim = self.registry.claim_batch(self.model, fingerprint, origin, self.holder, self.ttl_s)
        if claim:
            self.fingerprint, self._claim_open = fingerprint, True
        return claim

    @property
    def lost(self) -> bool:
        """Whether another run took the lease over (this process stalled past its expiry)."""
        return self._renewer.lost

    def give_back(self) -> bool:
        """After a transient failure: the content claim becomes ``released`` (False if it was not held)."""
        if self.fingerprint is None:
            return False
        return self.registry.give_back_batch(self.model, self.fingerprint, self.holder)

    def close(self) -> None:
        self._renewer.__exit__(None, None, None)
        self.registry.release(file_lease_name(self.model, self.path), self.holder)

    def _renew(self) -> bool:
        held = self.registry.renew(file_lease_name(self.model, self.path), self.holder, self.ttl_s)
        fingerprint = self.fingerprint
        if self._claim_open and fingerprint is not None:
            if self.registry.renew_batch(self.model, fingerprint, self.holder, self.ttl_s):
                return held
            record = self.registry.batch(self.model, fingerprint)
            # Recorded or given back by this run: nothing left to renew. Processing under another holder: lost.
            taken = record is not None and record.status == "processing" and record.holder != self.holder
            held = held and not taken
            self._claim_open = False
        return held
