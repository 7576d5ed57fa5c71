"""What on-call runs: roll the champion back, and replay a quarantined batch once its problem is fixed.

Both are plain functions over the registry, the store and the files (no Prefect); the CLI wraps them and emits
the events that notify.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from driftline import data
from driftline.errors import DriftlineError, StoreError
from driftline.registry import LedgerEntry, open_registry
from driftline.settings import get_settings
from driftline.spec import ModelSpec
from driftline.validation import ValidationReport, validate


def previous_good(model: str) -> str:
    """The version the current champion replaced: the last known good one."""
    registry = open_registry()
    champion = registry.champion(model)
    if champion is None:
        raise StoreError(f"{model}: no champion to roll back")
    for entry in reversed(registry.ledger(model)):
        if entry.to_version == champion.version and entry.from_version:
            return entry.from_version
    raise StoreError(f"{model}: champion {champion.version} replaced no earlier version; nothing to roll back to")


def rollback(model: str, to: str | None, actor: str, reason: str) -> LedgerEntry:
    """Make ``to`` (default: the version the champion replaced) champion again through compare-and-set.

    If a promotion lands between reading the champion and moving it, the rollback loses with PromotionConflict
    and nothing changes; run it again to roll back from the new champion.
    """
    registry = open_registry()
    champion = registry.champion(model)
    if champion is None:
        raise StoreError(f"{model}: no champion to roll back")
    target = to or previous_good(model)
    registry.version(model, target)  # an unknown version is a StoreError naming the known ones
    if target == champion.version:
        raise DriftlineError(f"{model}: {target} is already the champion")
    return registry.promote(
        model,
        target,
        champion.version,
        actor=actor,
        reason=reason,
        evidence={"rolled_back_from": champion.version},
        action="rollback",
    )


@dataclass(frozen=True)
class Replay:
    """What replaying a quarantined batch did."""

    folder: Path
    report: ValidationReport
    landed: Path | None  # where the batch went back into the landing area; None if it still fails


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
    """Validate a quarantined batch with the current suite; if it passes, move it back into the landing area."""
    folder = find_quarantined(spec, name)
    files = [p for p in folder.iterdir() if p.is_file() and p.name not in ("validation.json", "replayed.json")]
    if len(files) != 1:
        raise StoreError(f"{folder}: expected one quarantined batch file, found {len(files)} (already replayed?)")
    batch_file = files[0]
    batch = data.load_source(spec, str(batch_file))[0]
    report = validate(batch, spec)
    if not report.success:
        return Replay(folder, report, None)
    if "://" in spec.landing and not spec.landing.startswith("file://"):
        raise StoreError(
            f"{spec.name}: the landing area {spec.landing} is remote; the batch passes now — copy {batch_file} there"
        )
    landing = Path(spec.landing.removeprefix("file://")).parent
    landing.mkdir(parents=True, exist_ok=True)
    target = landing / batch_file.name
    if target.exists():
        raise StoreError(f"{target}: a file of that name is already waiting in the landing area")
    # The note is written first: if the move is interrupted, the batch is still in quarantine, never lost.
    note = {"replayed_at": datetime.now(UTC).isoformat(), "to": str(target), "suite_digest": report.suite_digest}
    (folder / "replayed.json").write_text(json.dumps(note, indent=2), encoding="utf-8")
    shutil.move(batch_file, target)
    return Replay(folder, report, target)
