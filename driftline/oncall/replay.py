"""What on-call runs: roll the champion back, and replay a quarantined batch once its problem is fixed.

A replay returns a batch to where it came from (its landing path, or its source path if the source file is gone)
and never writes over a file that is there now.

Both are plain functions over the registry, the store and the files (no Prefect); the CLI wraps them and emits
the events that notify.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from driftline.errors import StoreError
from driftline.loop import data
from driftline.loop.data import SourceKind
from driftline.loop.validation import ValidationReport, validate
from driftline.registry import open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec

ReplayAction = Literal["moved_back", "copied_back", "already_in_place", "not_a_file", "still_fails"]


@dataclass(frozen=True)
class Replay:
    """What replaying a quarantined batch did, and where the batch is now."""

    folder: Path
    report: ValidationReport
    action: ReplayAction
    source_kind: SourceKind  # where it came from: a spec's source, or the monitor's landing area
    origin: str  # the origin path (or sql:/sklearn: name) the batch was read from
    released: bool = False  # the registry's quarantined claim was released, so the monitor scores it

    @property
    def passes(self) -> bool:
        return self.action != "still_fails"

    def describe(self) -> str:
        """Say where the batch is now and what happened to get it there."""
        return {
            "moved_back": f"moved back to the landing area: {self.origin}",
            "copied_back": f"copied back to its source path {self.origin} (the quarantine keeps its copy)",
            "already_in_place": f"{self.origin} still holds the same bytes: nothing moved",
            "not_a_file": f"it came from {self.origin}, which driftline does not write to: nothing moved",
            "still_fails": "it still fails and stays in quarantine",
        }[self.action]

    def next_step(self, model: str) -> str:
        """What runs next, and the command that runs it now."""
        if self.source_kind == "landing":
            return f"the next monitor run scores it (now: driftline monitor {model})"
        return f"the next train run reads it from its source (now: driftline train {model})"


def find_quarantined(spec: ModelSpec, name: str) -> Path:
    """The quarantine folder of a model named (or prefixed) ``name``, or whose batch fingerprint starts with it."""
    root = get_settings().quarantine_dir / spec.name
    folders = sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    matches = [f for f in folders if f.name.startswith(name) or f.name.split("-", 1)[-1].startswith(name)]
    if len(matches) != 1:
        known = ", ".join(f.name for f in folders[-10:]) or "none"
        found = "no" if not matches else f"{len(matches)}"
        raise StoreError(f"{spec.name}: {found} quarantined batch matches {name!r} (quarantined: {known})")
    return matches[0]


def replay(spec: ModelSpec, name: str) -> Replay:
    """Validate a quarantined batch with the current suite; if it passes, return it to where it came from.

    A landing batch moves back to its landing path; a source batch was never moved, so its copy goes back only
    if the source file is gone. Either way the registry releases the batch's claim, so the next monitor run scores
    it instead of filing it as a duplicate. Nothing is ever written over a file that is there now.
    """
    folder = find_quarantined(spec, name)
    note_path = folder / "replayed.json"
    if note_path.exists():
        note = json.loads(note_path.read_text(encoding="utf-8"))
        raise StoreError(
            f"{folder}: already replayed at {note.get('replayed_at')} ({note.get('action')}: {note.get('to')})"
        )
    record = data.read_record(folder)
    if record.get("kind") == "symlink":  # evidence only: reading it would follow the link (loop/landing.py)
        raise StoreError(
            f"{folder}: a symbolic link (to {record.get('target')}) kept as evidence; links are never read or "
            "replayed: deliver the file itself to the landing area"
        )
    batch_file = _batch_file(folder, record)
    kind, origin = _origin(spec, record)
    kept_digest = str(record.get("sha256") or data.sha256_of(str(batch_file)))
    action: ReplayAction
    if not _is_file_origin(record, origin):
        action = "not_a_file"
    elif data.exists(origin):
        there = data.sha256_of(origin)
        if there != kept_digest:
            raise StoreError(_conflict(kind, origin, there, kept_digest, batch_file, spec.name))
        action = "already_in_place"
    else:
        action = "moved_back" if kind == "landing" else "copied_back"
    batch = data.load_source(spec, str(batch_file))[0]
    report = validate(batch, spec)
    if not report.success:
        return Replay(folder, report, "still_fails", kind, origin)

    # Release before the file goes back: a monitor run that sees the file then scores it. The other order could
    # let it find the file still claimed as quarantined and file it away as a duplicate.
    released = open_registry().release_batch(spec.name, str(record.get("fingerprint") or batch.fingerprint))
    if batch.fingerprint != record.get("fingerprint"):
        released = open_registry().release_batch(spec.name, batch.fingerprint) or released
    if action == "moved_back":
        data.move_to(batch_file, origin)
    elif action == "copied_back":
        data.copy_to(batch_file, origin)
    note = {
        "replayed_at": datetime.now(UTC).isoformat(),
        "action": action,
        "source_kind": kind,
        "to": origin,
        "suite_digest": report.suite_digest,
        "released": released,
    }
    note_path.write_text(json.dumps(note, indent=2), encoding="utf-8")
    return Replay(folder, report, action, kind, origin, released)


def _conflict(kind: SourceKind, origin: str, there: str, kept: str, batch_file: Path, model: str) -> str:
    """Why a replay refuses when another file is at the batch's origin, and what to do instead."""
    digests = f"sha256 {there[:12]} there, {kept[:12]} quarantined"
    if kind == "source":
        return (
            f"{origin}: the source file has changed since it was quarantined ({digests}); nothing was moved. "
            f"If it was fixed, the next train run reads it as it is now (driftline train {model}); the quarantined "
            f"copy {batch_file} stays as evidence"
        )
    return (
        f"{origin}: a different file is in the landing area under the batch's name ({digests}); nothing was moved. "
        f"Let the monitor take that file first (driftline monitor {model}) or move it away, then replay again"
    )


def _batch_file(folder: Path, record: dict[str, Any]) -> Path:
    named = folder / str(record["file"]) if record.get("file") else None
    if named is not None and named.is_file():
        return named
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name not in ("validation.json", "replayed.json")
    ]
    if len(files) != 1:
        raise StoreError(f"{folder}: expected one quarantined batch file, found {len(files)} (already replayed?)")
    return files[0]


def _origin(spec: ModelSpec, record: dict[str, Any]) -> tuple[SourceKind, str]:
    """Where a quarantined batch came from: the kind and origin recorded, or inferred for an older record."""
    origin = str(record.get("origin_path") or record["origin"])
    kind = record.get("source_kind")
    if kind in ("source", "landing"):
        return kind, origin
    # Records written before driftline kept the kind: a file under the landing glob came from the landing area.
    landing = fnmatch.fnmatch(origin.removeprefix("file://"), spec.landing.removeprefix("file://"))
    return ("landing" if landing else "source"), origin


def _is_file_origin(record: dict[str, Any], origin: str) -> bool:
    if "origin_path" in record:
        return record["origin_path"] is not None
    return not origin.startswith(("sql:", "sklearn:")) and " batches: " not in origin
