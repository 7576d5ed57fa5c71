"""Read the champion, record gate decisions and versions, and promote with compare-and-set."""

from __future__ import annotations

import getpass

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftline.loop.gate import GateDecision
from driftline.loop.lineage import Lineage
from driftline.registry import Champion, LedgerEntry, open_registry


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers often run as a uid with no passwd entry
        return "unknown"


@task(name="read-champion", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def read_champion(model: str) -> Champion | None:
    """Read the current champion; promotion later compares against this."""
    return open_registry().champion(model)


@task(name="record-gate-decision", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def record_gate_decision(model: str, decision: GateDecision, flow_run_id: str | None) -> None:
    """Append the gate decision and its evidence to the registry."""
    open_registry().record_gate(model, decision.accepted, decision.reason, decision.as_dict(), flow_run_id)


@task(name="register-version", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def register_version(lineage: Lineage) -> None:
    """Record a packaged version and its lineage in the registry."""
    assert lineage.version is not None and lineage.tag is not None
    open_registry().record_version(lineage.model, lineage.version, lineage.tag, lineage)


# No retries: a compare-and-set that lost must not be retried into a win.
@task(name="promote-version", cache_policy=NO_CACHE)
def promote_version(
    model: str, version: str, expected: Champion | None, decision: GateDecision, flow_run_id: str | None
) -> LedgerEntry:
    """Make the version champion if the champion is still the one this run started from."""
    return open_registry().promote(
        model,
        version,
        expected.version if expected else None,
        actor=f"{_user()} (flow run {flow_run_id})" if flow_run_id else _user(),
        reason=decision.reason,
        evidence=decision.as_dict(),
        flow_run_id=flow_run_id,
    )
