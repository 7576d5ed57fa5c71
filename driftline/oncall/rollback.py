"""Roll a model's champion back to an earlier version, through the registry's compare-and-set."""

from __future__ import annotations

from driftline.errors import DriftlineError, StoreError
from driftline.registry import LedgerEntry, open_registry


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


def rollback(model: str, to: str | None, actor: str, reason: str) -> LedgerEntry:
    """Make ``to`` (default: the version the champion replaced) champion again through compare-and-set.

    If a promotion lands between reading the champion and moving it, the rollback loses with PromotionConflict
    and nothing changes; run it again to roll back from the new champion.
    """
    registry = open_registry()
    champion = registry.champion(model)
    if champion is None:
        raise StoreError(f"{model}: no champion to roll back")
    target = to or previous_good(model)
    registry.version(model, target)  # an unknown version is a StoreError naming the known ones
    if target == champion.version:
        raise DriftlineError(f"{model}: {target} is already the champion")
    return registry.promote(
        model,
        target,
        champion.version,
        actor=actor,
        reason=reason,
        evidence={"rolled_back_from": champion.version},
        action="rollback",
    )
