"""Roll a model's champion back to an earlier version, through the registry's compare-and-set, and tell on-call."""

from __future__ import annotations

from dataclasses import dataclass

from driftline.errors import DriftlineError, StoreError
from driftline.registry import LedgerEntry, open_registry
from driftline.registry.records import unmet

FORCED = "forced-rollback"  # the ledger action of a rollback that skipped the promotable checks


@dataclass(frozen=True)
class RolledBack:
    """A rollback's ledger entry, and why on-call was not told of it (None when the event went out)."""

    entry: LedgerEntry
    not_notified: str | None = None


def previous_good(model: str) -> str:
    """The version the current champion replaced: the last known good one."""
    registry = open_registry()
    champion = registry.champion(model)
    if champion is None:
        raise StoreError(f"{model}: no champion to roll back")
    for entry in reversed(registry.ledger(model)):
        if entry.to_version == champion.version and entry.from_version:
            return entry.from_version
    raise StoreError(f"{model}: champion {champion.version} replaced no earlier version; nothing to roll back to")


def rollback(
    model: str, to: str | None, actor: str, reason: str, *, notify: bool = True, force: bool = False
) -> RolledBack:
    """Make ``to`` (default: the version the champion replaced) champion again through compare-and-set.

    ``to`` must have passed every required check (NotPromotable names the one missing). ``force`` overrides that
    and is recorded as ledger action ``forced-rollback`` with ``reason`` and the checks it skipped.

    If a promotion lands between reading the champion and moving it, the rollback loses with PromotionConflict
    and nothing changes; run it again to roll back from the new champion. Once the champion has moved, on-call is
    told (event ``driftline.model.rolled-back`` with its alert) unless ``notify`` is off; a Prefect API that cannot
    be reached does not undo the rollback, it is reported in ``not_notified``.
    """
    registry = open_registry()
    champion = registry.champion(model)
    if champion is None:
        raise StoreError(f"{model}: no champion to roll back")
    target = to or previous_good(model)
    registry.version(model, target)  # an unknown version is a StoreError naming the known ones
    if target == champion.version:
        raise DriftlineError(f"{model}: {target} is already the champion")
    evidence: dict[str, object] = {"rolled_back_from": champion.version}
    if force:
        if not reason.strip():
            raise DriftlineError(f"{model}: --force needs a --reason, recorded in the ledger")
        evidence["forced"] = True
        evidence["unmet_checks"] = unmet(registry.checks(model, target))
    entry = registry.promote(
        model,
        target,
        champion.version,
        actor=actor,
        reason=reason,
        evidence=evidence,
        action=FORCED if force else "rollback",
        force=force,
    )
    if not notify:
        return RolledBack(entry)
    try:
        _notify(entry)
    except DriftlineError as error:
        return RolledBack(entry, not_notified=str(error))
    return RolledBack(entry)


def _notify(entry: LedgerEntry) -> None:
    """Emit ``driftline.model.rolled-back`` with its alert on the Prefect API this process uses (PREFECT_API_URL)."""
    from driftline.oncall import alerts, events

    previous = entry.from_version
    assert previous is not None  # a rollback always moves from a champion
    events.emit(
        events.MODEL_ROLLED_BACK,
        entry.model,
        {"version": entry.to_version, "previous": previous, "actor": entry.actor, "reason": entry.reason},
        alerts.rolled_back(entry.model, entry.to_version, previous, entry.actor, entry.reason),
    )
