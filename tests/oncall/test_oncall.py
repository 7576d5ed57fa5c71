"""Rollback through the registry's compare-and-set, and replay of quarantined batches to where they came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftline.errors import DriftlineError, PromotionConflict, StoreError
from driftline.examples.fraud import generate
from driftline.loop import data
from driftline.loop.data import SourceKind
from driftline.oncall.replay import find_quarantined, replay
from driftline.oncall.rollback import previous_good, rollback
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import load_spec
from tests.conftest import Project, make_lineage, mark_checked


def _champions(*versions: str) -> None:
    registry = open_registry()
    previous = None
    for version in versions:
        registry.record_version("fraud", version, f"fraud:{version}", make_lineage("fraud", version))
        mark_checked(registry, "fraud", version)
        registry.promote("fraud", version, previous, actor="train", reason="better", evidence={})
        previous = version


def test_rollback_restores_the_version_the_champion_replaced_and_records_both_moves(project: Project) -> None:
    _champions("v1", "v2", "v3")
    assert previous_good("fraud") == "v2"
    entry = rollback("fraud", None, actor="alice", reason="v3 flags every card", notify=False).entry
    assert (entry.from_version, entry.to_version, entry.action, entry.actor) == ("v3", "v2", "rollback", "alice")
    registry = open_registry()
    assert registry.champion("fraud").version == "v2"  # type: ignore[union-attr]
    moves = [(e.action, e.from_version, e.to_version) for e in registry.ledger("fraud")]
    assert moves[-2:] == [("promote", "v2", "v3"), ("rollback", "v3", "v2")]
    assert registry.ledger("fraud")[-1].reason == "v3 flags every card"

    rollback("fraud", "v1", actor="alice", reason="further back", notify=False)
    assert registry.champion("fraud").version == "v1"  # type: ignore[union-attr]


def test_rollback_refuses_what_it_cannot_do(project: Project) -> None:
    with pytest.raises(StoreError, match="fraud: no champion to roll back"):
        rollback("fraud", None, actor="a", reason="r", notify=False)
    _champions("v1")
    with pytest.raises(StoreError, match="replaced no earlier version"):
        rollback("fraud", None, actor="a", reason="r", notify=False)
    with pytest.raises(StoreError, match=r"fraud:v9: no such version in the registry \(versions: v1\)"):
        rollback("fraud", "v9", actor="a", reason="r", notify=False)
    with pytest.raises(DriftlineError, match="v1 is already the champion"):
        rollback("fraud", "v1", actor="a", reason="r", notify=False)


def test_a_rollback_tells_on_call_itself_and_a_missing_server_does_not_undo_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.errors import ServerError
    from driftline.oncall import alerts, events

    _champions("v1", "v2")
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(events, "emit", lambda *args: sent.append(args))
    done = rollback("fraud", None, actor="alice", reason="v2 flags every card")
    assert done.not_notified is None
    payload = {"version": "v1", "previous": "v2", "actor": "alice", "reason": "v2 flags every card"}
    alert = alerts.rolled_back("fraud", "v1", "v2", "alice", "v2 flags every card")
    assert sent == [(events.MODEL_ROLLED_BACK, "fraud", payload, alert)]

    def unreachable(*args: Any) -> None:
        raise ServerError("PREFECT_API_URL=http://127.0.0.1:9/api is not answering (GET /health failed)")

    monkeypatch.setattr(events, "emit", unreachable)
    done = rollback("fraud", "v2", actor="alice", reason="back again")
    assert done.entry.to_version == "v2" and open_registry().champion("fraud").version == "v2"  # type: ignore[union-attr]
    assert done.not_notified == "PREFECT_API_URL=http://127.0.0.1:9/api is not answering (GET /health failed)"
    assert len(sent) == 1


def test_a_rollback_racing_a_promotion_loses_cleanly(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _champions("v1", "v2")
    registry = open_registry()
    registry.record_version("fraud", "v3", "fraud:v3", make_lineage("fraud", "v3"))
    mark_checked(registry, "fraud", "v3")
    real_version = registry.version

    def promotion_lands_meanwhile(model: str, version: str) -> Any:
        monkeypatch.setattr(registry, "version", real_version)
        registry.promote("fraud", "v3", "v2", actor="train", reason="nightly", evidence={})
        return real_version(model, version)

    monkeypatch.setattr(registry, "version", promotion_lands_meanwhile)
    with pytest.raises(PromotionConflict, match="champion changed since this run began"):
        rollback("fraud", None, actor="bob", reason="bad", notify=False)
    assert registry.champion("fraud").version == "v3"  # type: ignore[union-attr]
    assert [e.action for e in registry.ledger("fraud")] == ["promote", "promote", "promote"]  # no rollback entry


def _quarantine(path: Path, where: SourceKind, corrupt: bool = False, seed: int = 5) -> Path:
    """Put a batch at ``path`` and quarantine it as the train (source) or monitor (landing) flow would.

    The batch is clean unless ``corrupt``: say it was quarantined by a suite that has since been fixed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(300, seed, corrupt=corrupt).to_parquet(path, index=False)
    (batch,) = data.load_source(load_spec("fraud"), str(path))
    if where == "landing":  # the monitor claims a landing batch before validating it
        registry = open_registry()
        assert registry.claim_batch("fraud", batch.fingerprint, batch.origin)
    kept = data.quarantine(batch, "fraud", get_settings().quarantine_dir, {"validation": {}}, where=where)
    if where == "landing":
        registry.finish_batch("fraud", batch.fingerprint, status="quarantined", stored_path=str(kept))
    return kept


def test_replay_moves_a_landing_batch_back_to_its_landing_path_and_the_monitor_may_claim_it(project: Project) -> None:
    path = project.fraud_data / "landing" / "late.parquet"
    kept = _quarantine(path, "landing")
    content = kept.read_bytes()
    fingerprint = data.read_record(kept.parent)["fingerprint"]
    assert not path.exists() and not open_registry().claim_batch("fraud", fingerprint, str(path))

    done = replay(load_spec("fraud"), kept.parent.name[:10])

    assert (done.action, done.source_kind, done.origin) == ("moved_back", "landing", str(path))
    assert path.read_bytes() == content and not kept.exists()
    assert done.released
    registry = open_registry()
    assert registry.batch("fraud", fingerprint).status == "replayed"  # type: ignore[union-attr]
    assert registry.claim_batch("fraud", fingerprint, str(path))  # scored next, not filed as a duplicate
    assert not registry.claim_batch("fraud", fingerprint, str(path))  # and claimed once, as any batch
    note = json.loads((done.folder / "replayed.json").read_text())
    assert (note["action"], note["to"], note["released"]) == ("moved_back", str(path), True)
    with pytest.raises(StoreError, match="already replayed"):
        replay(load_spec("fraud"), done.folder.name)


def test_replay_refuses_to_overwrite_another_file_at_the_landing_path(project: Project) -> None:
    path = project.fraud_data / "landing" / "late.parquet"
    kept = _quarantine(path, "landing")
    generate(100, 99).to_parquet(path, index=False)  # a new delivery under the same name
    newer = path.read_bytes()

    with pytest.raises(StoreError, match="a different file is in the landing area") as raised:
        replay(load_spec("fraud"), kept.parent.name)

    assert "driftline monitor fraud" in str(raised.value)
    assert path.read_bytes() == newer and kept.is_file()
    assert not (kept.parent / "replayed.json").exists()
    fingerprint = data.read_record(kept.parent)["fingerprint"]
    assert open_registry().batch("fraud", fingerprint).status == "quarantined"  # type: ignore[union-attr]


def test_replay_of_a_source_batch_still_in_place_moves_and_duplicates_nothing(project: Project) -> None:
    path = project.fraud_data / "batch-0001.parquet"
    kept = _quarantine(path, "source")
    before = (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
    files = sorted(project.fraud_data.rglob("*"))

    done = replay(load_spec("fraud"), kept.parent.name)

    assert (done.action, done.source_kind, done.origin) == ("already_in_place", "source", str(path))
    assert "still holds the same bytes: nothing moved" in done.describe()
    assert "driftline train fraud" in done.next_step("fraud")
    assert (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) == before
    assert sorted(project.fraud_data.rglob("*")) == files  # no second copy next to the user's file
    assert kept.read_bytes() == before[0]  # the evidence stays in quarantine
    assert json.loads((done.folder / "replayed.json").read_text())["action"] == "already_in_place"


def test_replay_copies_a_source_batch_back_only_when_its_file_is_gone(project: Project) -> None:
    path = project.fraud_data / "batch-0001.parquet"
    kept = _quarantine(path, "source")
    content = path.read_bytes()
    path.unlink()

    done = replay(load_spec("fraud"), kept.parent.name)

    assert done.action == "copied_back"
    assert path.read_bytes() == content and kept.read_bytes() == content
    assert not path.samefile(kept)
    assert [p.name for p in project.fraud_data.iterdir()] == ["batch-0001.parquet"]  # no partial file left


def test_replay_refuses_when_the_source_file_changed_and_says_what_to_do(project: Project) -> None:
    path = project.fraud_data / "batch-0001.parquet"
    kept = _quarantine(path, "source", corrupt=True)
    generate(300, 6).to_parquet(path, index=False)  # the user fixed the file in place
    fixed = path.read_bytes()

    with pytest.raises(StoreError, match="the source file has changed since it was quarantined") as raised:
        replay(load_spec("fraud"), kept.parent.name)

    assert "driftline train fraud" in str(raised.value)
    assert path.read_bytes() == fixed and kept.is_file()


def test_replay_of_a_batch_that_still_fails_keeps_it_quarantined(project: Project) -> None:
    path = project.fraud_data / "landing" / "bad.parquet"
    kept = _quarantine(path, "landing", corrupt=True)
    done = replay(load_spec("fraud"), kept.parent.name)
    assert done.action == "still_fails" and not done.passes and not done.report.success
    assert kept.is_file() and not path.exists()
    assert not (done.folder / "replayed.json").exists()
    fingerprint = data.read_record(kept.parent)["fingerprint"]
    assert open_registry().batch("fraud", fingerprint).status == "quarantined"  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="no quarantined batch matches 'nothing'"):
        find_quarantined(load_spec("fraud"), "nothing")


def test_replay_of_an_older_record_infers_its_origin_from_the_landing_glob(project: Project) -> None:
    path = project.fraud_data / "landing" / "old.parquet"
    kept = _quarantine(path, "landing")
    record = data.read_record(kept.parent)
    for key in ("source_kind", "origin_path", "moved", "sha256", "file"):  # what records held before
        record.pop(key)
    (kept.parent / "validation.json").write_text(json.dumps(record))

    done = replay(load_spec("fraud"), kept.parent.name)

    assert (done.action, done.source_kind) == ("moved_back", "landing")
    assert path.is_file() and not kept.exists()


def test_an_event_payload_with_a_huge_text_is_cut_under_prefects_size_limit() -> None:
    from driftline.oncall.events import MAX_TEXT, _bounded

    payload = {"failures": ["x" * 1_000_000, "short"], "nested": {"body": "y" * (MAX_TEXT + 1)}, "rows": 3}
    cut = _bounded(payload)
    assert cut["failures"][0].startswith("x" * 100) and "(1000000 characters, cut)" in cut["failures"][0]
    assert len(cut["failures"][0]) < MAX_TEXT + 100 and cut["failures"][1] == "short" and cut["rows"] == 3
    assert len(json.dumps(cut)) < 1_500_000 and cut["nested"]["body"].endswith(f"({MAX_TEXT + 1} characters, cut)")
