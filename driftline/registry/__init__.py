"""The registry: which version is champion, every packaged version's lineage, gate decisions, and the ledger.

SQLite under the state directory by default; any SQLAlchemy URL (e.g. PostgreSQL) by configuration. Promotion is
compare-and-set: it names the champion the run started from and fails if another run moved it since. The ledger
is append-only.

One facade, :class:`Registry`, over the modules that do the work:

- :mod:`~driftline.registry.schema`: the tables;
- :mod:`~driftline.registry.records`: the typed records it returns and the batch statuses;
- :mod:`~driftline.registry.models`: versions and lineage, their checks, champions, promotion, the ledger, gate
  decisions;
- :mod:`~driftline.registry.batches`: batch claims (leases on a fingerprint) and outcomes, monitor and retrain
  decisions;
- :mod:`~driftline.registry.leases`: leases, their holders (``host:pid:flow-run``) and a background renewer.

Reads are typed: a version's lineage is a :class:`~driftline.loop.lineage.Lineage`, a batch's drift a
:class:`~driftline.monitoring.drift.DriftReport`, statuses and decisions are StrEnums.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from driftline.errors import StoreError
from driftline.libs import lazy_module
from driftline.loop.lineage import Lineage
from driftline.loop.statuses import Decision
from driftline.registry.leases import Hold, Renewer, holder_dead, holder_for
from driftline.registry.records import (
    RECLAIMABLE,
    SCORED,
    BatchRecord,
    BatchStatus,
    Champion,
    Check,
    CheckRecord,
    CheckStatus,
    Claim,
    ClaimOutcome,
    GateRecord,
    Lease,
    LedgerEntry,
    MonitorDecision,
    VersionRecord,
)

if TYPE_CHECKING:
    import sqlalchemy as sa
else:
    sa = lazy_module("sqlalchemy")

__all__ = [
    "CLAIM_TTL_S",
    "RECLAIMABLE",
    "SCORED",
    "BatchRecord",
    "BatchStatus",
    "Champion",
    "Check",
    "CheckRecord",
    "CheckStatus",
    "Claim",
    "ClaimOutcome",
    "Decision",
    "GateRecord",
    "Hold",
    "Lease",
    "LedgerEntry",
    "MonitorDecision",
    "Registry",
    "Renewer",
    "VersionRecord",
    "holder_dead",
    "holder_for",
    "open_registry",
]

F = TypeVar("F", bound=Callable[..., Any])
# A locked database (another writer holds SQLite's lock past its 5 s busy timeout; a PostgreSQL lock or deadlock) is
# tried again after these pauses: each attempt's transaction rolled back, so nothing is written twice.
LOCK_RETRY_SECONDS = (0.5, 2.0)
# A batch claim's lease: renewed every third of it while the work goes on, so a run that stalls or dies loses it
# within two minutes (a dead holder on this host loses it at once).
CLAIM_TTL_S = 120.0
_LOCKED = ("database is locked", "database table is locked", "lock timeout", "could not obtain lock", "deadlock")


def _guarded(operation: str) -> Callable[[F], F]:
    """Turn a database failure into a StoreError naming the registry and the operation; retry a lock, briefly."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def guarded(self: Registry, *args: Any, **kwargs: Any) -> Any:
            for pause in (*LOCK_RETRY_SECONDS, None):
                try:
                    return method(self, *args, **kwargs)
                except sa.exc.OperationalError as error:
                    if pause is None or not any(word in str(error.orig).lower() for word in _LOCKED):
                        raise self.failed(operation, error) from None
                    time.sleep(pause)
                except sa.exc.SQLAlchemyError as error:
                    raise self.failed(operation, error) from None
            raise AssertionError("unreachable")  # the last attempt returns or raises

        return cast(F, guarded)

    return decorate


class Registry:
    """Champion pointers, versions, gate decisions, the promotion ledger, batches and leases in one SQL database."""

    def __init__(self, url: str) -> None:
        # The tables and their queries import SQLAlchemy, so a flow that imports this facade does not pay for it.
        from driftline.registry import schema
        from driftline.registry.batches import BatchRecords
        from driftline.registry.leases import Leases
        from driftline.registry.models import ModelRecords

        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url)
            schema.create(self.engine)
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(f"registry {self.safe_url}: cannot open: {error}") from error
        self._models = ModelRecords(self.engine)
        self._batches = BatchRecords(self.engine)
        self._leases = Leases(self.engine)

    @property
    def safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def failed(self, operation: str, error: sa.exc.SQLAlchemyError) -> StoreError:
        """The error for a database failure: the registry, the operation, and the database's own first line."""
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        locked = any(word in reason.lower() for word in _LOCKED)
        hint = "; another process holds the database's lock, try again" if locked else ""
        return StoreError(f"registry {self.safe_url}: cannot {operation}: {reason}{hint} (nothing was written)")

    # -- versions, champions, the ledger, gate decisions ---------------------------------------------------------

    @_guarded("read the champion")
    def champion(self, model: str) -> Champion | None:
        """The model's champion; None before its first promotion."""
        return self._models.champion(model)

    @_guarded("record a version")
    def record_version(
        self,
        model: str,
        version: str,
        tag: str,
        lineage: Lineage,
        checks: Sequence[tuple[Check, CheckStatus, str]] = (),
    ) -> None:
        """Record a packaged version and its lineage, with the checks it has passed so far, in one transaction."""
        self._models.record_version(model, version, tag, lineage, checks)

    @_guarded("record a check")
    def record_check(self, model: str, version: str, check: Check, status: CheckStatus, detail: str) -> None:
        """Record a version's check; the latest record of each check counts."""
        self._models.record_check(model, version, check, status, detail)

    @_guarded("read a version's checks")
    def checks(self, model: str, version: str) -> list[CheckRecord]:
        """Every check recorded for a version, oldest first."""
        return self._models.checks(model, version)

    @_guarded("record a version's digests")
    def record_files(self, model: str, version: str, files: dict[str, str], detail: str) -> None:
        """Record file digests for a version packaged before driftline recorded them (``driftline trust``)."""
        self._models.record_files(model, version, files, detail)

    @_guarded("read the versions")
    def versions(self, model: str) -> list[VersionRecord]:
        """Every recorded version of the model, newest first."""
        return self._models.versions(model)

    @_guarded("read a version")
    def version(self, model: str, version: str) -> VersionRecord:
        """One version; a StoreError naming the known versions if there is no such version."""
        return self._models.version(model, version)

    @_guarded("record a gate decision")
    def record_gate(
        self, model: str, accepted: bool, reason: str, evidence: dict[str, Any], flow_run_id: str | None
    ) -> None:
        """Append a gate decision and its evidence."""
        self._models.record_gate(model, accepted, reason, evidence, flow_run_id)

    @_guarded("read gate decisions")
    def gate_decisions(self, model: str, limit: int = 10) -> list[GateRecord]:
        """The model's last gate decisions, newest first."""
        return self._models.gate_decisions(model, limit)

    @_guarded("promote")
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
        force: bool = False,
    ) -> LedgerEntry:
        """Make ``version`` champion if the champion is still ``expected``; record it in the ledger atomically.

        Raises PromotionConflict, and changes nothing, if another run moved the champion since; NotPromotable if
        the version has not passed every required check (``force``: on-call's override, recorded by the caller).
        """
        return self._models.promote(
            model,
            version,
            expected,
            actor=actor,
            reason=reason,
            evidence=evidence,
            flow_run_id=flow_run_id,
            action=action,
            force=force,
        )

    @_guarded("read the ledger")
    def ledger(self, model: str) -> list[LedgerEntry]:
        """Every promotion and rollback of the model, oldest first."""
        return self._models.ledger(model)

    # -- monitored batches and decisions -------------------------------------------------------------------------

    @_guarded("claim a batch")
    def claim_batch(
        self, model: str, fingerprint: str, origin: str, holder: str | None = None, ttl_s: float = CLAIM_TTL_S
    ) -> Claim:
        """Claim a batch for ``holder`` (default: this process) with a lease of ``ttl_s`` seconds.

        True when this run holds it now: new (``claimed``), or its holder died or its lease expired
        (``taken_over``). False when a live holder has it (``busy``: leave the file for later) or the same content
        was already accepted or quarantined (``duplicate``).
        """
        return self._batches.claim(model, fingerprint, origin, holder or holder_for(), ttl_s)

    @_guarded("renew a batch claim")
    def renew_batch(self, model: str, fingerprint: str, holder: str, ttl_s: float = CLAIM_TTL_S) -> bool:
        """Extend a claim's lease; False if ``holder`` lost it (another run took it over)."""
        return self._batches.renew(model, fingerprint, holder, ttl_s)

    @_guarded("give back a batch claim")
    def give_back_batch(self, model: str, fingerprint: str, holder: str) -> bool:
        """After a transient failure: mark the claim ``released`` so the next run takes the batch at once."""
        return self._batches.give_back(model, fingerprint, holder)

    @_guarded("release a batch")
    def release_batch(self, model: str, fingerprint: str) -> bool:
        """Let a quarantined batch be claimed again (after a replay); False if it is not quarantined here."""
        return self._batches.release(model, fingerprint)

    @_guarded("record a batch's outcome")
    def finish_batch(self, model: str, fingerprint: str, holder: str | None = None, **values: Any) -> bool:
        """Record the outcome of a claimed batch: ``status`` (a BatchStatus), ``drift`` (a DriftReport), paths...

        With ``holder``, only while it still holds the claim: False, and nothing written, if it was taken over.
        """
        return self._batches.finish(model, fingerprint, values, holder)

    @_guarded("read a batch")
    def batch(self, model: str, fingerprint: str) -> BatchRecord | None:
        """One batch or traffic window by its fingerprint; None if it was never claimed."""
        return self._batches.get(model, fingerprint)

    @_guarded("read batches")
    def batches(
        self, model: str, status: BatchStatus | tuple[BatchStatus, ...] | None = None, limit: int | None = None
    ) -> list[BatchRecord]:
        """Batches (and scored traffic windows) of a model, newest first."""
        return self._batches.find(model, status, limit)

    @_guarded("record a decision")
    def record_decision(
        self,
        model: str,
        decision: Decision,
        reason: str,
        fingerprint: str | None = None,
        flow_run_id: str | None = None,
    ) -> MonitorDecision:
        """Append a monitor or retrain decision."""
        return self._batches.record_decision(model, decision, reason, fingerprint, flow_run_id)

    @_guarded("read decisions")
    def decisions(self, model: str, limit: int = 20, decision: Decision | None = None) -> list[MonitorDecision]:
        """Monitor and retrain decisions of a model (only ``decision`` if given), newest first."""
        return self._batches.decisions(model, limit, decision)

    # -- leases ------------------------------------------------------------------------------------------------

    @_guarded("take a lease")
    def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease ``name`` for ``holder``; None if a live holder has an unexpired one."""
        return self._leases.acquire(name, holder, ttl_s)

    @_guarded("renew a lease")
    def renew(self, name: str, holder: str, ttl_s: float) -> bool:
        """Push the lease's expiry ``ttl_s`` from now; False if ``holder`` no longer holds it."""
        return self._leases.renew(name, holder, ttl_s)

    @_guarded("release a lease")
    def release(self, name: str, holder: str) -> None:
        """Give the lease back; nothing happens if ``holder`` does not hold it."""
        self._leases.release(name, holder)

    @_guarded("read a lease")
    def lease(self, name: str) -> Lease | None:
        """The lease ``name`` as held now (possibly expired); None if nobody holds it."""
        return self._leases.get(name)


_open: dict[str, Registry] = {}


def open_registry(url: str | None = None) -> Registry:
    """The registry at ``url`` (default: from the settings), one engine per URL per process."""
    from driftline.settings import get_settings

    url = url or get_settings().registry
    if url not in _open:
        _open[url] = Registry(url)
    return _open[url]
