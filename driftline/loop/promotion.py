"""Record what the gate decided and promote with compare-and-set: the registry writes of a training run."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

from driftline.loop.gate import GateDecision
from driftline.loop.lineage import Lineage
from driftline.loop.statuses import Check, CheckStatus

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


def register(registry: Registry, lineage: Lineage, decision: GateDecision) -> None:
    """Record a packaged version, its lineage and file digests, and the checks it has passed: the gate, digests."""
    assert lineage.version is not None and lineage.tag is not None
    files = lineage.model_files
    checks = [
        (Check.GATE, CheckStatus.PASSED if decision.accepted else CheckStatus.FAILED, decision.reason),
        (
            Check.DIGESTS,
            CheckStatus.PASSED if files else CheckStatus.FAILED,
            f"sha256 of {len(files)} files recorded" if files else "no file digests in the lineage",
        ),
    ]
    registry.record_version(lineage.model, lineage.version, lineage.tag, lineage, checks)


def record_servability(registry: Registry, model: str, version: str, ok: bool | None, reason: str) -> None:
    """Record the version's servability check; ``ok`` None: the spec turns the check off (``serving.check``)."""
    if ok is None:
        status, detail = CheckStatus.WAIVED, "serving.check is false in the spec"
    else:
        status, detail = (CheckStatus.PASSED if ok else CheckStatus.FAILED), reason
    registry.record_check(model, version, Check.SERVABILITY, status, detail)


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
