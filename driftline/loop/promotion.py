"""Record what the gate decided and promote with compare-and-set: the registry writes of a training run."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

from driftline.loop.gate import GateDecision
from driftline.loop.lineage import Lineage

if TYPE_CHECKING:
    from driftline.registry import Champion, LedgerEntry, Registry


def user() -> str:
    """Who runs this process, for the ledger."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers often run as a uid with no passwd entry
        return "unknown"


def record_gate(registry: Registry, model: str, decision: GateDecision, flow_run_id: str | None) -> None:
    """Append the gate decision and its evidence to the registry."""
    registry.record_gate(model, decision.accepted, decision.reason, decision.as_dict(), flow_run_id)


def register(registry: Registry, lineage: Lineage) -> None:
    """Record a packaged version and its lineage in the registry."""
    assert lineage.version is not None and lineage.tag is not None
    registry.record_version(lineage.model, lineage.version, lineage.tag, lineage)


def promote(
    registry: Registry,
    model: str,
    version: str,
    expected: Champion | None,
    decision: GateDecision,
    flow_run_id: str | None,
) -> LedgerEntry:
    """Make the version champion if the champion is still ``expected``, the one the run started from."""
    return registry.promote(
        model,
        version,
        expected.version if expected else None,
        actor=f"{user()} (flow run {flow_run_id})" if flow_run_id else user(),
        reason=decision.reason,
        evidence=decision.as_dict(),
        flow_run_id=flow_run_id,
    )
