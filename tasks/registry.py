"""Read the champion, record gate decisions and versions, and promote with compare-and-set."""

from __future__ import annotations

from driftline.loop import promotion
from driftline.loop.gate import GateDecision
from driftline.loop.lineage import Lineage
from driftline.registry import Champion, LedgerEntry, open_registry
from driftline.serving.servability import ServabilityReport
from driftline.spec import ModelSpec
from tasks.options import REGISTRY, step


@step("read-champion", REGISTRY)
def read_champion(spec: ModelSpec) -> Champion | None:
    """Read the current champion; promotion later compares against this."""
    return open_registry().champion(spec.name)


@step("record-gate-decision", REGISTRY)
def record_gate_decision(spec: ModelSpec, *, decision: GateDecision, flow_run_id: str | None) -> None:
    """Append the gate decision and its evidence to the registry."""
    promotion.record_gate(open_registry(), spec.name, decision, flow_run_id)


@step("register-version", REGISTRY)
def register_version(spec: ModelSpec, *, lineage: Lineage, decision: GateDecision) -> None:
    """Record a packaged version, its lineage and file digests, and the checks it passed so far (gate, digests)."""
    promotion.register(open_registry(), lineage, decision)


@step("record-servability", REGISTRY)
def record_servability(spec: ModelSpec, *, version: str, report: ServabilityReport | None) -> None:
    """Record the version's servability check (None: waived by ``serving.check = false``); only a version that
    passed it (or had it waived) can be champion."""
    ok, reason = (None, "") if report is None else (report.ok, report.reason)
    promotion.record_servability(open_registry(), spec.name, version, ok, reason)


# No retries: a compare-and-set that lost must not be retried into a win.
@step("promote-version")
def promote_version(
    spec: ModelSpec, *, version: str, expected: Champion | None, decision: GateDecision, flow_run_id: str | None
) -> LedgerEntry:
    """Make the version champion if the champion is still the one this run started from."""
    return promotion.promote(open_registry(), spec.name, version, expected, decision, flow_run_id)
