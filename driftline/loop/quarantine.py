"""Reject a batch that failed validation: keep it byte-identical in quarantine and say where, and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from driftline.loop import data
from driftline.loop.data import Batch, SourceKind
from driftline.loop.validation import ValidationReport
from driftline.spec import ModelSpec


@dataclass(frozen=True)
class Rejected:
    """A batch that failed validation: where it is kept, what broke, and the message for the run's failure.

    ``where`` says whose file it was: ``"source"`` (a file the spec's source names: copied, left in place) or
    ``"landing"`` (a file in the monitor's landing area: moved out of it).
    """

    origin: str
    fingerprint: str
    rows: int
    kept: Path
    where: SourceKind
    left_in_place: bool
    suite: str
    failures: list[str]
    message: str


def reject(
    batch: Batch, report: ValidationReport, spec: ModelSpec, root: Path, where: SourceKind = "source"
) -> Rejected:
    """Quarantine a failed batch under ``root`` with its validation result beside it; say where it is kept."""
    kept = data.quarantine(batch, spec.name, root, {"validation": report.as_dict()}, where=where)
    return Rejected(
        origin=batch.origin,
        fingerprint=batch.fingerprint,
        rows=batch.rows,
        kept=kept,
        where=where,
        left_in_place=batch.path is not None and where == "source",
        suite=report.suite,
        failures=[outcome.describe() for outcome in report.failures],
        message=f"{report.summary()}\n  {kept_message(batch, kept, where, spec.name)}",
    )


def kept_message(batch: Batch, kept: Path, where: SourceKind, model: str) -> str:
    """Say where a rejected batch is and what became of the original, with what to do next."""
    if batch.path is None:
        return f"its rows are kept at {kept}; {batch.origin} is not driftline's to change: fix it there"
    if where == "landing":
        return (
            f"moved out of the landing area to {kept} (byte-identical); once the data or the suite is fixed, "
            f"`driftline replay {model} {kept.parent.name}` returns it to {batch.path}"
        )
    return (
        f"copied byte-identical to {kept}; {batch.path} is left in place (a spec's source is never moved): "
        "fix or remove it, or fix the suite, then run again"
    )
