"""Record file digests for a version packaged before driftline recorded them, so it can be loaded again.

Such a version is refused by every load (ModelIntegrityError: no digests recorded). After on-call has checked the
model store (or restored it from a backup), ``driftline trust MODEL:VERSION --reason ...`` hashes its files as they
are now and records them, with a passed ``digests`` check whose detail names who and why. A version that already has
digests is never re-trusted: a mismatch there means the store changed, and the answer is to retrain or restore.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftline.errors import DriftlineError
from driftline.loop import store
from driftline.registry import open_registry


@dataclass(frozen=True)
class Trusted:
    """The version whose digests were recorded, and how many files they cover."""

    tag: str
    files: int


def trust(model: str, version: str, actor: str, reason: str) -> Trusted:
    """Record the current digests of a version that has none; DriftlineError if it has some or no reason is given."""
    if not reason.strip():
        raise DriftlineError(f"{model}:{version}: trust needs --reason (it is recorded with the digests)")
    registry = open_registry()
    record = registry.version(model, version)
    if record.lineage.model_files:
        raise DriftlineError(
            f"{model}:{version}: digests are already recorded ({len(record.lineage.model_files)} files); a version "
            f"whose files no longer match is not re-trusted: retrain (`driftline train {model}`) or restore the store"
        )
    files = store.digests(record.tag)
    registry.record_files(model, version, files, f"recorded after packaging by {actor}: {reason}")
    return Trusted(record.tag, len(files))
