"""Only a version that passed every check (gate, digests, servability) can be champion; --force is on-call's
override and the ledger records it with its reason and the checks it skipped."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.errors import NotPromotable
from driftline.loop import promotion
from driftline.loop.gate import GateDecision
from driftline.oncall.rollback import FORCED, rollback
from driftline.registry import Check, CheckStatus, open_registry
from tests.conftest import Project, make_lineage, mark_checked


def _champions(*versions: str) -> None:
    registry = open_registry()
    previous = None
    for version in versions:
        registry.record_version("fraud", version, f"fraud:{version}", make_lineage("fraud", version))
        mark_checked(registry, "fraud", version)
        registry.promote("fraud", version, previous, actor="train", reason="better", evidence={})
        previous = version


def _accepted() -> GateDecision:
    return GateDecision(
        accepted=True,
        reason="roc_auc 0.9100 vs no champion",
        metric="roc_auc",
        maximize=True,
        challenger=0.91,
        champion=None,
        champion_version=None,
        improvement=None,
        min_metric=0.85,
        min_improvement=0.002,
        holdout_rows=600,
        holdout_digest="d" * 64,
    )


def _registered(version: str, *checks: tuple[Check, CheckStatus, str]) -> None:
    lineage = make_lineage("fraud", version, model_files={"saved_model.pkl": "0" * 64})
    open_registry().record_version("fraud", version, f"fraud:{version}", lineage, checks)


def test_a_version_whose_servability_check_never_finished_cannot_be_rolled_back_to(project: Project) -> None:
    _champions("v1", "v2")
    # What a run killed during its servability check leaves: registered, gate and digests passed, nothing more.
    _registered("v3", (Check.GATE, CheckStatus.PASSED, "better"), (Check.DIGESTS, CheckStatus.PASSED, "3 files"))
    registry = open_registry()
    before = registry.ledger("fraud")

    with pytest.raises(NotPromotable, match=r"fraud:v3 is not promotable: servability not recorded"):
        rollback("fraud", "v3", actor="alice", reason="try", notify=False)

    champion = registry.champion("fraud")
    assert champion is not None and champion.version == "v2"
    assert registry.ledger("fraud") == before


def test_a_failed_check_is_named_with_its_reason(project: Project) -> None:
    _champions("v1", "v2")
    _registered(
        "v3",
        (Check.GATE, CheckStatus.PASSED, "better"),
        (Check.DIGESTS, CheckStatus.PASSED, "3 files"),
        (Check.SERVABILITY, CheckStatus.FAILED, "the service exited with code 1"),
    )
    with pytest.raises(NotPromotable, match=r"servability failed: the service exited with code 1"):
        rollback("fraud", "v3", actor="alice", reason="try", notify=False)


def test_a_version_without_any_check_is_not_promoted_either(project: Project) -> None:
    registry = open_registry()
    registry.record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1"))  # as older driftline left it
    with pytest.raises(NotPromotable, match=r"gate not recorded .* digests not recorded .* servability not recorded"):
        registry.promote("fraud", "v1", None, actor="train", reason="first", evidence={})
    assert registry.champion("fraud") is None


def test_the_train_flow_s_records_make_a_version_promotable_only_after_servability(project: Project) -> None:
    registry = open_registry()
    decision = _accepted()
    lineage = make_lineage("fraud", "v1", model_files={"saved_model.pkl": "0" * 64})
    promotion.register(registry, lineage, decision)
    assert [(c.check, c.status) for c in registry.checks("fraud", "v1")] == [
        (Check.GATE, CheckStatus.PASSED),
        (Check.DIGESTS, CheckStatus.PASSED),
    ]
    with pytest.raises(NotPromotable, match="servability not recorded"):
        registry.promote("fraud", "v1", None, actor="train", reason="first", evidence={})

    promotion.record_servability(registry, "fraud", "v1", None, "")  # serving.check = false: waived, and says so
    assert registry.checks("fraud", "v1")[-1].detail == "serving.check is false in the spec"
    entry = registry.promote("fraud", "v1", None, actor="train", reason="first", evidence={})
    assert entry.to_version == "v1"


def test_a_version_without_digests_fails_its_digests_check(project: Project) -> None:
    registry = open_registry()
    promotion.register(registry, make_lineage("fraud", "v1"), _accepted())
    promotion.record_servability(registry, "fraud", "v1", True, "answered identically")
    with pytest.raises(NotPromotable, match="digests failed: no file digests in the lineage"):
        registry.promote("fraud", "v1", None, actor="train", reason="first", evidence={})


def test_force_rolls_back_and_the_ledger_records_it_with_the_reason(project: Project) -> None:
    _champions("v1", "v2")
    _registered("v3")
    registry = open_registry()
    registry.promote("fraud", "v3", "v2", actor="oncall", reason="x", evidence={}, force=True)  # an earlier override

    done = rollback("fraud", "v1", actor="alice", reason="v3 flags every card", notify=False, force=True)

    assert (done.entry.action, done.entry.reason, done.entry.to_version) == (FORCED, "v3 flags every card", "v1")
    assert done.entry.evidence["forced"] is True
    assert done.entry.evidence["unmet_checks"] == []  # v1 had passed everything; forcing skipped nothing
    unchecked = rollback("fraud", "v3", actor="alice", reason="only v3 reads the new schema", notify=False, force=True)
    assert unchecked.entry.action == FORCED
    assert any(check.startswith("gate not recorded") for check in unchecked.entry.evidence["unmet_checks"])
    assert registry.ledger("fraud")[-1] == unchecked.entry


@pytest.mark.integration
def test_the_cli_refuses_force_without_a_reason_and_records_it_with_one(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)  # the session's server: the CLI starts no managed one
    _champions("v1", "v2")
    _registered("v3")
    runner = CliRunner()

    refused = runner.invoke(app, ["rollback", "fraud", "--to", "v3"])
    assert refused.exit_code == 1 and "not promotable: gate not recorded" in refused.output
    assert "--force" in refused.output  # says how to override
    no_reason = runner.invoke(app, ["rollback", "fraud", "--to", "v3", "--force"])
    assert no_reason.exit_code == 1 and "--force needs --reason" in no_reason.output

    forced = runner.invoke(app, ["rollback", "fraud", "--to", "v3", "--force", "--reason", "hotfix needs v3"])
    assert forced.exit_code == 0, forced.output
    entry = open_registry().ledger("fraud")[-1]
    assert (entry.action, entry.to_version, entry.reason) == (FORCED, "v3", "hotfix needs v3")
