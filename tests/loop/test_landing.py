"""The landing area's entries: ready, waiting or not a regular file; unreadable files quarantined byte-identical."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from driftline.examples.fraud import generate
from driftline.loop import landing
from driftline.loop.data import Batch
from driftline.loop.landing import EntryState, Reason
from tests.conftest import Project


def _states(folder: Path, **options: object) -> dict[str, tuple[str, str]]:
    return {Path(e.path).name: (e.state, e.kind) for e in landing.scan(str(folder / "*"), **options)}  # type: ignore[arg-type]


def test_every_entry_is_ready_waiting_or_not_regular(tmp_path: Path) -> None:
    inbox = tmp_path / "landing"
    inbox.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("token\nhunter2\n")
    generate(50, 1).to_parquet(inbox / "good.parquet", index=False)
    (inbox / "up.csv.part").write_text("a\n")
    (inbox / ".hidden.csv").write_text("a\n")
    (inbox / "sub").mkdir()
    (inbox / "out.csv").symlink_to(outside)
    (inbox / "in.parquet").symlink_to(inbox / "good.parquet")
    (inbox / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    os.mkfifo(inbox / "pipe.csv")

    assert _states(inbox) == {
        "good.parquet": ("ready", "file"),
        "up.csv.part": ("waiting", "file"),
        ".hidden.csv": ("waiting", "file"),
        "sub": ("not_regular", "directory"),
        "out.csv": ("not_regular", "symlink"),
        "in.parquet": ("not_regular", "symlink"),
        "dangling.csv": ("not_regular", "symlink"),
        "pipe.csv": ("not_regular", "fifo"),
    }


def test_a_file_through_a_linked_folder_out_of_the_landing_area_is_never_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.csv").write_text("a\n1\n")
    inbox = tmp_path / "landing"
    inbox.mkdir()
    (inbox / "feed").symlink_to(elsewhere)
    (entry,) = landing.scan(str(inbox / "*" / "*.csv"))
    assert (entry.state, entry.kind) == ("not_regular", "outside") and str(elsewhere) in entry.reason


def test_a_file_still_changing_waits_until_it_settles(tmp_path: Path) -> None:
    inbox = tmp_path / "landing"
    inbox.mkdir()
    fresh = inbox / "fresh.csv"
    fresh.write_text("a\n1\n")
    (entry,) = landing.scan(str(inbox / "*"), settle_seconds=30)
    assert entry.state == EntryState.WAITING and "monitor.settle_seconds" in entry.reason
    past = time.time() - 60
    os.utime(fresh, (past, past))
    (entry,) = landing.scan(str(inbox / "*"), settle_seconds=30)
    assert entry.state == EntryState.READY


def test_with_a_ready_marker_only_a_folder_that_holds_it_is_ready(tmp_path: Path) -> None:
    inbox = tmp_path / "landing"
    (inbox / "d1").mkdir(parents=True)
    (inbox / "d2").mkdir()
    for folder in ("d1", "d2"):
        (inbox / folder / "part-0.csv").write_text("a\n1\n")
    (inbox / "d2" / "_SUCCESS").touch()
    found = {
        str(Path(e.path).relative_to(inbox)): e.state
        for e in landing.scan(str(inbox / "*" / "*"), settle_seconds=3600, ready_marker="_SUCCESS")
    }
    assert found == {"d1/part-0.csv": "waiting", "d2/part-0.csv": "ready", "d2/_SUCCESS": "waiting"}


@pytest.mark.parametrize(
    ("name", "content", "reason", "words"),
    [
        ("empty.parquet", b"", Reason.EMPTY, "empty (0 bytes)"),
        ("garbage.parquet", b"\x00\x01 not parquet at all" * 10, Reason.UNREADABLE, "not a readable Parquet file"),
        ("latin.csv", "amount,country\n1,Fran\xe7a\n".encode("latin-1"), Reason.WRONG_ENCODING, "not UTF-8"),
        ("notes.txt", b"a,b\n1,2\n", Reason.UNKNOWN_FORMAT, "unknown format (.txt)"),
        ("header.csv", b"amount,country\n", Reason.EMPTY, "a header and no rows"),
        ("blank.csv", b"\n\n", Reason.EMPTY, "nothing to read"),
        ("plain.csv.gz", b"a,b\n1,2\n", Reason.UNREADABLE, "cannot decompress"),
    ],
)
def test_an_unreadable_file_is_quarantined_byte_identical_with_the_reason(
    tmp_path: Path, name: str, content: bytes, reason: Reason, words: str
) -> None:
    inbox = tmp_path / "landing"
    inbox.mkdir()
    (inbox / name).write_bytes(content)
    (entry,) = landing.scan(str(inbox / "*"))
    read = landing.read(entry)
    assert isinstance(read, landing.Unreadable) and read.reason == reason and words in read.message, read
    assert name in read.message

    kept = landing.quarantine(entry, "fraud", tmp_path / "quarantine", read.reason, read.message)
    assert kept.path.read_bytes() == content and not (inbox / name).exists()
    record = json.loads((kept.path.parent / "validation.json").read_text())
    assert record["reason"] == reason and record["error"] == read.message and record["origin_path"] == entry.path
    assert kept.digest[:12] in kept.path.parent.name


def test_a_readable_file_becomes_a_batch(tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n")
    (entry,) = landing.scan(str(tmp_path / "*"))
    batch = landing.read(entry)
    assert isinstance(batch, Batch) and batch.rows == 1 and batch.path == entry.path


def test_a_link_is_quarantined_as_a_link_and_its_target_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2\n")
    inbox = tmp_path / "landing"
    inbox.mkdir()
    (inbox / "x.csv").symlink_to(secret)
    (entry,) = landing.scan(str(inbox / "*"))
    kept = landing.quarantine(entry, "fraud", tmp_path / "q", Reason.NOT_REGULAR, entry.reason)
    assert kept.path.is_symlink() and os.readlink(kept.path) == str(secret) and secret.read_text() == "token\nhunter2\n"
    text = (kept.path.parent / "validation.json").read_text()
    assert "hunter2" not in text and json.loads(text)["target"] == str(secret)


def test_redelivered_names_never_overwrite_an_earlier_quarantined_copy(tmp_path: Path) -> None:
    inbox = tmp_path / "landing"
    inbox.mkdir()
    kept = []
    for content in (b"one", b"two", b"three", b"two"):
        (inbox / "feed.txt").write_bytes(content)
        (entry,) = landing.scan(str(inbox / "*"))
        read = landing.read(entry)
        assert isinstance(read, landing.Unreadable)
        kept.append(landing.quarantine(entry, "fraud", tmp_path / "q", read.reason, read.message).path)
    assert [path.read_bytes() for path in kept] == [b"one", b"two", b"three", b"two"]
    assert len({path.parent for path in kept}) == 4


def test_a_file_that_changes_while_read_waits(tmp_path: Path) -> None:
    path = tmp_path / "grow.csv"
    path.write_text("a\n1\n")
    (entry,) = landing.scan(str(tmp_path / "*"))
    with path.open("a") as handle:
        handle.write("2\n")
    assert isinstance(landing.read(entry), landing.Changed)


def test_a_quarantined_link_is_never_replayed_or_read(project: Project) -> None:
    from driftline.errors import StoreError
    from driftline.oncall.replay import replay
    from driftline.settings import get_settings
    from driftline.spec import load_spec

    spec = load_spec("fraud")
    secret = project.root / "secret.csv"
    secret.write_text("token\nhunter2\n")
    inbox = Path(spec.landing).parent
    inbox.mkdir(parents=True)
    (inbox / "x.csv").symlink_to(secret)
    (entry,) = landing.scan(spec.landing)
    kept = landing.quarantine(entry, "fraud", get_settings().quarantine_dir, Reason.NOT_REGULAR, entry.reason)
    atime = secret.stat().st_atime_ns
    with pytest.raises(StoreError, match="links are never read or replayed"):
        replay(spec, kept.path.parent.name)
    assert kept.path.is_symlink() and not (inbox / "x.csv").exists() and secret.stat().st_atime_ns == atime


def test_a_remote_landing_area_is_sorted_and_quarantined_the_same_way(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/landing-test/ok.csv", b"a,b\n1,2\n")
    fs.pipe("/landing-test/bad.csv", "a\ncaf\xe9\n".encode("latin-1"))
    fs.pipe("/landing-test/up.csv.part", b"a\n")
    try:
        entries = {Path(e.path).name: e for e in landing.scan("memory://landing-test/*")}
        assert {name: e.state for name, e in entries.items()} == {
            "ok.csv": "ready",
            "bad.csv": "ready",
            "up.csv.part": "waiting",
        }
        assert all(e.state == "waiting" for e in landing.scan("memory://landing-test/*", settle_seconds=3600))
        assert isinstance(landing.read(entries["ok.csv"]), Batch)
        bad = landing.read(entries["bad.csv"])
        assert isinstance(bad, landing.Unreadable) and bad.reason == Reason.WRONG_ENCODING
        kept = landing.quarantine(entries["bad.csv"], "fraud", tmp_path / "q", bad.reason, bad.message)
        assert kept.path.read_bytes() == "a\ncaf\xe9\n".encode("latin-1") and not fs.exists("/landing-test/bad.csv")
    finally:
        fs.rm("/landing-test", recursive=True)
