"""Model integrity: the sha256 of every file of a stored model, recorded when it is packaged, checked before a load.

A stored model is a pickle, and unpickling runs code, so a model folder is trusted only if every file in it is the
one packaged: same paths, same bytes. :func:`verify` hashes the folder's files (reading bytes, never unpickling)
and raises :class:`~driftline.errors.ModelIntegrityError` naming the model, the version and the first file that
differs, before anything is loaded. A version packaged before driftline recorded digests has none and is refused
too (see docs/security.md for how to record them).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from driftline.errors import ModelIntegrityError

NOT_A_FILE = "not-a-regular-file"  # the digest recorded for a symlink, device or socket: it never matches a file
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a regular file's bytes; ``NOT_A_FILE`` for anything else (a symlink is not followed)."""
    if path.is_symlink() or not path.is_file():
        return NOT_A_FILE
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (recursively, symlinks not followed) by its ``/``-separated relative path."""
    found: dict[str, str] = {}
    for root, directories, files in os.walk(folder, followlinks=False):
        base = Path(root)
        # A symlinked directory is listed as a directory but not entered: record it so it cannot hide as "extra".
        names = list(files) + [d for d in directories if (base / d).is_symlink()]
        for name in names:
            path = base / name
            found[path.relative_to(folder).as_posix()] = file_digest(path)
    return dict(sorted(found.items()))


def differences(expected: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """Each file that differs, as ``<path> changed|missing|extra``, sorted by path."""
    problems = []
    for path in sorted(set(expected) | set(found)):
        if path not in found:
            problems.append(f"{path} missing")
        elif path not in expected:
            problems.append(f"{path} extra (not packaged)")
        elif found[path] != expected[path]:
            problems.append(f"{path} changed (sha256 {found[path][:12]}…, packaged {expected[path][:12]}…)")
    return problems


def verify(tag: str, folder: Path, expected: Mapping[str, str] | None) -> None:
    """Check ``folder`` holds exactly the files packaged as ``tag``; ModelIntegrityError (nothing loaded) if not."""
    model, _, version = tag.partition(":")
    if not expected:
        raise ModelIntegrityError(
            f"{model} version {version}: no file digests are recorded for it (packaged before driftline recorded "
            f"them, or not in this registry), so it is not loaded; retrain it (`driftline train {model}`), or, "
            f"after checking the store at {folder}, record them with `driftline trust {tag} --reason ...`"
        )
    problems = differences(expected, folder_digests(folder))
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])})" if len(problems) > 1 else ""
        raise ModelIntegrityError(
            f"{model} version {version}: refused to load, its files do not match the digests recorded when it "
            f"was packaged: file "
            f"{problems[0]}{more}, in {folder}. Nothing was unpickled. Treat the model store as tampered with: "
            f"see docs/runbook.md (ModelIntegrityError)"
        )
