"""The landing area: what is in it, what is ready, and what becomes of a file that cannot be read.

Every entry a landing glob matches is exactly one of:

- ``ready``: a regular file inside the landing area, complete (unchanged for ``monitor.settle_seconds``, or its
  folder holds ``monitor.ready_marker``). The monitor reads it: accepted, quarantined with a reason, or duplicate.
- ``waiting``: not ready yet and left where it is: a hidden name, an upload in progress (``.tmp``, ``.part``...),
  a file still changing, a folder without its marker, or the marker itself.
- ``not_regular``: never read. A symbolic link is moved to quarantine *as a link* (its target recorded, nothing
  read or followed); a directory, FIFO, socket or device, or a file reached through a link out of the landing
  area, is reported and left in place.

A ready file that cannot be read is moved to quarantine byte-identical, with the reader's error in plain words.
Nothing here raises for bad content: one bad file never blocks the files after it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from driftline.errors import UnreadableFile
from driftline.loop import data
from driftline.loop.data import Batch, Reason

__all__ = ["Changed", "Entry", "EntryState", "Kept", "Reason", "Unreadable", "quarantine", "read", "scan"]


class EntryState(StrEnum):
    """What a landing entry is when the monitor looks at it."""

    READY = "ready"
    WAITING = "waiting"
    NOT_REGULAR = "not_regular"


@dataclass(frozen=True)
class Entry:
    """One path a landing glob matched, classified without reading it."""

    path: str
    state: EntryState
    kind: str  # file, symlink, directory, fifo, socket, device, outside (a file reached through a link out)
    reason: str = ""  # plain words: why it waits or is not regular
    target: str | None = None  # a symbolic link's target, as written in the link
    size: int | None = None
    mtime_ns: int | None = None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Unreadable:
    """A ready file that could not be read as a batch, and why, in plain words."""

    entry: Entry
    reason: Reason
    message: str


@dataclass(frozen=True)
class Changed:
    """A ready file that changed (or went away) while it was read: it waits for the next run."""

    entry: Entry
    message: str


# -- listing -------------------------------------------------------------------------------------------------------


def scan(location: str, settle_seconds: float = 0.0, ready_marker: str | None = None) -> list[Entry]:
    """Every entry the landing ``location`` (a glob, a folder, or an fsspec URL) matches, sorted by path."""
    if data._remote(location):
        return _scan_remote(location, settle_seconds, ready_marker)
    pattern = location.removeprefix("file://")
    if not glob.has_magic(pattern) and os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    base = os.path.realpath(_base_dir(pattern))
    now = time.time_ns()
    entries = []
    for path in sorted(glob.glob(pattern, include_hidden=True)):
        entry = _classify(path, base, settle_seconds, ready_marker, now)
        if entry is not None:
            entries.append(entry)
    return entries


def _base_dir(pattern: str) -> str:
    """The landing area's root: the folders of the pattern before its first wildcard."""
    parts = Path(pattern).parts
    fixed = [part for part in parts[: next((i for i, p in enumerate(parts) if glob.has_magic(p)), len(parts))]]
    if len(fixed) == len(parts):  # a single file named outright
        fixed = fixed[:-1]
    return os.path.join(*fixed) if fixed else "."


def _classify(path: str, base: str, settle: float, marker: str | None, now_ns: int) -> Entry | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None  # gone between the listing and the look: nothing to do
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        target = os.readlink(path)
        return Entry(
            path, EntryState.NOT_REGULAR, "symlink", f"a symbolic link to {target}; links are never followed", target
        )
    if stat.S_ISDIR(mode):
        return Entry(path, EntryState.NOT_REGULAR, "directory", "a directory; left in place (batches are files)")
    if not stat.S_ISREG(mode):
        kind = "fifo" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        return Entry(path, EntryState.NOT_REGULAR, kind, f"a {kind}, not a regular file; left in place, never opened")
    real = os.path.realpath(path)
    if os.path.commonpath([real, base]) != base:
        return Entry(
            path,
            EntryState.NOT_REGULAR,
            "outside",
            f"reached through a link out of the landing area (to {real}); left in place, never read",
        )
    name = os.path.basename(path)
    waiting = _waiting_reason(name, os.path.dirname(path), marker, settle, (now_ns - info.st_mtime_ns) / 1e9)
    if waiting:
        return Entry(path, EntryState.WAITING, "file", waiting, size=info.st_size, mtime_ns=info.st_mtime_ns)
    return Entry(path, EntryState.READY, "file", size=info.st_size, mtime_ns=info.st_mtime_ns)


def _waiting_reason(name: str, folder: str, marker: str | None, settle: float, age_s: float | None) -> str:
    if name.startswith("."):
        return "a hidden file; never a batch"
    if name.lower().endswith(data.IN_PROGRESS_SUFFIXES):
        return f"an upload in progress ({name.rsplit('.', 1)[-1]} name); taken once renamed"
    if marker is not None:
        if name == marker:
            return "the completion marker; never a batch"
        if not data.exists(f"{folder}/{marker}" if folder else marker):
            return f"no {marker} in its folder yet (monitor.ready_marker)"
        return ""
    if age_s is None:
        if settle > 0:
            return "its store does not say when it last changed; set monitor.ready_marker, or settle_seconds = 0"
        return ""
    if age_s < settle:
        return f"changed {max(age_s, 0.0):.1f} s ago; ready once unchanged for {settle:g} s (monitor.settle_seconds)"
    return ""


def _scan_remote(location: str, settle: float, marker: str | None) -> list[Entry]:
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(location)
    entries = []
    now = time.time()
    for path in sorted(paths):
        info = fs.info(path)
        url = fs.unstrip_protocol(path)
        if info.get("islink"):
            entries.append(Entry(url, EntryState.NOT_REGULAR, "symlink", "a symbolic link; links are never followed"))
            continue
        if info.get("type") != "file":
            entries.append(Entry(url, EntryState.NOT_REGULAR, "directory", "a directory; left in place"))
            continue
        mtime = _remote_mtime(info)
        age = None if mtime is None else now - mtime
        size = int(info.get("size") or 0)
        stamp = None if mtime is None else int(mtime * 1e9)
        folder = url.rsplit("/", 1)[0]
        waiting = _waiting_reason(path.rsplit("/", 1)[-1], folder, marker, settle, age)
        state = EntryState.WAITING if waiting else EntryState.READY
        entries.append(Entry(url, state, "file", waiting, size=size, mtime_ns=stamp))
    return entries


def _remote_mtime(info: dict[str, Any]) -> float | None:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


# -- reading one ready file ---------------------------------------------------------------------------------------


def read(entry: Entry, declared_format: str | None = None) -> Batch | Unreadable | Changed:
    """Read a ready entry as a batch; an Unreadable (never an exception) if its content cannot be a batch."""
    if entry.size == 0:
        return Unreadable(entry, Reason.EMPTY, f"{entry.path}: the file is empty (0 bytes)")
    try:
        batch = data.read_batch(entry.path, declared_format, lazy=True)
    except UnreadableFile as error:
        if _changed(entry):
            return Changed(entry, f"{entry.path}: changed while it was read; it waits for the next run")
        return Unreadable(entry, Reason(error.reason), str(error))
    if _changed(entry):
        return Changed(entry, f"{entry.path}: changed while it was read; it waits for the next run")
    return batch


def _changed(entry: Entry) -> bool:
    """Whether a local file's size or mtime moved since the scan (or it is gone, or no longer a regular file)."""
    if data._remote(entry.path) or entry.mtime_ns is None:
        return False
    try:
        info = os.lstat(entry.path)
    except FileNotFoundError:
        return True
    return not stat.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime_ns) != (entry.size, entry.mtime_ns)


# -- quarantine: the file or the link, byte-identical, under a content-addressed name --------------------------------


@dataclass(frozen=True)
class Kept:
    """Where a quarantined landing entry is kept, and the sha256 its folder is named by."""

    path: Path
    digest: str


def quarantine(entry: Entry, model: str, root: Path, reason: Reason, message: str) -> Kept:
    """Move an unreadable file (or a symbolic link, as a link) out of the landing area into quarantine.

    The folder is named by time and the bytes' sha256 (a link: the sha256 of its target text), so a redelivered
    name never replaces an earlier copy. ``validation.json`` is written first: an interrupted move loses nothing.
    """
    if entry.kind == "symlink":
        digest = hashlib.sha256(str(entry.target).encode()).hexdigest()
        evidence: dict[str, Any] = {
            "kind": "symlink",
            "target": entry.target,
            "resolved": _resolved(entry),
        }
    else:
        digest = _sha256_nofollow(entry.path)
        evidence = {"kind": "file", "sha256": digest, "size": entry.size}
    folder = data._new_folder(root / model, digest)
    target = folder / entry.name
    record = {
        "origin": entry.path,
        "origin_path": entry.path,
        "fingerprint": digest,
        "rows": None,
        "source_kind": "landing",
        "moved": True,
        "file": entry.name,
        "reason": str(reason),
        "error": message,
        **evidence,
    }
    data._write_json(folder / "validation.json", record)
    data._move(entry.path, target)  # shutil.move: a link is moved as a link, never its target
    return Kept(target, digest)


def _resolved(entry: Entry) -> str:
    """Where a link points, as a path (computed, not opened)."""
    assert entry.target is not None
    return os.path.normpath(os.path.join(os.path.dirname(entry.path), entry.target))


def _sha256_nofollow(location: str) -> str:
    if data._remote(location):
        return data.sha256_of(location)
    digest = hashlib.sha256()
    descriptor = os.open(location, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
