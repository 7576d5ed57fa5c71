"""Rollback through the registry's compare-and-set, and replay of quarantined batches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from driftline import data
from driftline.errors import DriftlineError, PromotionConflict, StoreError
from driftline.examples.fraud import generate
from driftline.oncall import find_quarantined, previous_good, replay, rollback
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import load_spec
from tests.conftest import Project


def _champions(*versions: str) -> None:
    registry = open_registry()
    previous = None
    for version in versions:
        registry.record_version("fraud", version, f"fraud:{version}", {})
        registry.promote("fraud", version, previous, actor="train", reason="better", evidence={})
        previous = version


def test_rollback_restores_the_version_the_champion_replaced_and_records_both_moves(project: Project) -> None:
    _champions("v1", "v2", "v3")
    assert previous_good("fraud") == "v2"
    entry = rollback("fraud", None, actor="alice", reason="v3 flags every card")
    assert (entry.from_version, entry.to_version, entry.action, entry.actor) == ("v3", "v2", "rollback", "alice")
    registry = open_registry()
    assert registry.champion("fraud").version == "v2"  # type: ignore[union-attr]
    moves = [(e.action, e.from_version, e.to_version) for e in registry.ledger("fraud")]
    assert moves[-2:] == [("promote", "v2", "v3"), ("rollback", "v3", "v2")]
    assert registry.ledger("fraud")[-1].reason == "v3 flags every card"

    rollback("fraud", "v1", actor="alice", reason="further back")
    assert registry.champion("fraud").version == "v1"  # type: ignore[union-attr]


def test_rollback_refuses_what_it_cannot_do(project: Project) -> None:
    with pytest.raises(StoreError, match="fraud: no champion to roll back"):
        rollback("fraud", None, actor="a", reason="r")
    _champions("v1")
    with pytest.raises(StoreError, match="replaced no earlier version"):
        rollback("fraud", None, actor="a", reason="r")
    with pytest.raises(StoreError, match=r"fraud:v9: no such version in the registry \(versions: v1\)"):
        rollback("fraud", "v9", actor="a", reason="r")
    with pytest.raises(DriftlineError, match="v1 is already the champion"):
        rollback("fraud", "v1", actor="a", reason="r")


def test_a_rollback_racing_a_promotion_loses_cleanly(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _champions("v1", "v2")
    registry = open_registry()
    registry.record_version("fraud", "v3", "fraud:v3", {})
    real_version = registry.version

    def promotion_lands_meanwhile(model: str, version: str) -> Any:
        monkeypatch.setattr(registry, "version", real_version)
        registry.promote("fraud", "v3", "v2", actor="train", reason="nightly", evidence={})
        return real_version(model, version)

    monkeypatch.setattr(registry, "version", promotion_lands_meanwhile)
    with pytest.raises(PromotionConflict, match="champion changed since this run began"):
        rollback("fraud", None, actor="bob", reason="bad")
    assert registry.champion("fraud").version == "v3"  # type: ignore[union-attr]
    assert [e.action for e in registry.ledger("fraud")] == ["promote", "promote", "promote"]  # no rollback entry


def _quarantine(project: Project, corrupt: bool) -> str:
    spec = load_spec("fraud")
    path = project.write_fraud_batch("bad.parquet", generate(300, 5, corrupt=corrupt))
    (batch,) = data.load_source(spec, str(path))
    kept = data.quarantine(batch, "fraud", get_settings().quarantine_dir, {"validation": {}})
    return kept.parent.name


def test_replay_puts_a_batch_that_passes_now_back_in_the_landing_area(project: Project) -> None:
    folder = _quarantine(project, corrupt=False)  # say it was quarantined by a suite that has since been fixed
    original = next(p for p in (get_settings().quarantine_dir / "fraud" / folder).iterdir() if p.suffix == ".parquet")
    content = original.read_bytes()
    done = replay(load_spec("fraud"), folder[:10])
    assert done.landed is not None and done.landed.read_bytes() == content
    assert done.landed.parent == project.root / "data" / "fraud" / "landing"
    note = json.loads((done.folder / "replayed.json").read_text())
    assert note["to"] == str(done.landed)
    with pytest.raises(StoreError, match="already replayed"):
        replay(load_spec("fraud"), folder)


def test_replay_of_a_batch_that_still_fails_keeps_it_quarantined(project: Project) -> None:
    folder = _quarantine(project, corrupt=True)
    done = replay(load_spec("fraud"), folder)
    assert done.landed is None and not done.report.success
    assert [p.suffix for p in done.folder.iterdir() if p.suffix == ".parquet"] == [".parquet"]
    with pytest.raises(StoreError, match="no quarantined batch matches 'nothing'"):
        find_quarantined(load_spec("fraud"), "nothing")
