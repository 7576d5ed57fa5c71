"""Prefect artifacts that show a run's evidence in the UI: validation, metrics, gate decision, lineage.

Plain functions called from a flow (artifacts attach to the current run). Keys are lowercase letters, digits and
dashes, as Prefect requires.
"""

from __future__ import annotations

import json
import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from driftline.loop.evaluation import ChampionScore
from driftline.loop.gate import GateDecision, RowsEvidence
from driftline.loop.lineage import Lineage
from driftline.loop.modeling import Metrics
from driftline.loop.validation import ValidationReport
from driftline.monitoring.drift import DriftReport
from driftline.spec import ModelSpec


def artifact_key(model: str, what: str, project: str | None = None) -> str:
    """Key an artifact ``<project>-<model>-<what>``, so projects sharing a server keep their own history."""
    from driftline.oncall.events import current_project

    key = f"{project or current_project()}-{model}-{what}"
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", key.lower())).strip("-")


def publish_validation(spec: ModelSpec, reports: list[ValidationReport]) -> None:
    """Publish every expectation's outcome on every batch of the run."""
    model = spec.name
    rows = [
        {
            "batch": report.origin,
            "expectation": outcome.expectation,
            "column": outcome.column or "",
            "success": outcome.success,
            "observed": outcome.observed,
        }
        for report in reports
        for outcome in report.outcomes
    ]
    failed = sum(not report.success for report in reports)
    create_table_artifact(
        key=artifact_key(model, "validation"),
        table=rows,
        description=f"{model}: {len(reports)} batch(es) validated, {failed} failed",
    )


def publish_metrics(spec: ModelSpec, challenger: Metrics, champion_score: ChampionScore) -> None:
    """Publish every metric of both models on the held-out rows; an undefined metric shows why, never a NaN."""
    model, champion, champion_version = spec.name, champion_score.metrics, champion_score.version
    names = list(dict.fromkeys([*challenger.values, *challenger.undefined]))
    champion_column = f"champion {champion_version or '(none)'}"
    rows = []
    for name in names:
        notes = [f"challenger: {challenger.undefined[name]}"] if name in challenger.undefined else []
        if champion is not None and name in champion.undefined:
            notes.append(f"champion: {champion.undefined[name]}")
        rows.append(
            {
                "metric": name,
                "challenger": _rounded(challenger.values.get(name)),
                champion_column: _rounded(champion.values.get(name)) if champion else None,
                "gate metric": name == challenger.primary,
                "undefined": "; ".join(notes),
            }
        )
    create_table_artifact(
        key=artifact_key(model, "metrics"),
        table=rows,
        description=f"{model}: holdout metrics ({challenger.rows} rows)",
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _number(value: float | None, signed: bool = False) -> str:
    """A plain number for the markdown (``np.float64`` included), or a dash when there is none."""
    if value is None:
        return "—"
    return f"{float(value):+.6g}" if signed else f"{float(value):.6g}"


def _headline(decision: GateDecision) -> str:
    """The decision's outcome in words: what happened to the challenger and to the champion."""
    champion = decision.champion_version
    stays = f"champion {champion} stays" if champion else "no champion"
    where = {"recent": "the recent rows", "fixed": "the fixed holdout"}.get(decision.decided_on or "", "the holdout")
    outcome = decision.outcome or ("accepted" if decision.accepted else "regressed")
    if outcome == "accepted":
        return f"accepted: the challenger replaces champion {champion}" if champion else "accepted: the first model"
    if outcome == "regressed":
        least_loss, allowed = decision.fixed_loss_lower_bound, decision.allowed_regression
        if decision.decided_on is None:
            return f"regressed: the challenger misses gate.min_metric; {stays}"
        if least_loss is not None and allowed is not None and least_loss > allowed:
            return f"regressed: the challenger loses more than gate.max_regression on the fixed holdout; {stays}"
        return f"regressed: the challenger is significantly worse on {where}; {stays}"
    return {
        "not_better": f"not better: the challenger is not significantly better on {where}; {stays}",
        "incomparable": f"incomparable: the two models could not be compared; {stays}",
        "unservable": f"unservable: the packaged challenger failed its servability check; {stays}",
        "unchanged": f"unchanged: same data, spec and code as champion {champion}; nothing trained, nothing promoted",
    }[outcome]


def gate_markdown(model: str, decision: GateDecision) -> str:
    """The gate artifact: the outcome, the reason, and a table of every number the decision used."""
    overall = RowsEvidence(
        decision.holdout_rows,
        decision.holdout_digest,
        decision.challenger,
        decision.champion,
        decision.improvement if decision.decided_on == "holdout" else None,
    )
    parts = [
        ("holdout", "all held-out rows (gate.min_metric)", overall),
        ("fixed", "fixed holdout", decision.fixed),
        ("recent", "recent rows", decision.recent),
    ]
    lines = [
        f"# {model}: {_headline(decision)}",
        "",
        decision.reason,
        "",
        f"## Scores: {decision.metric} ({'higher' if decision.maximize else 'lower'} is better)",
        "",
        "| rows | count | digest | challenger | champion | improvement | undefined: why |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label, part in parts:
        if part is None:
            continue
        decides = " **(decides)**" if decision.decided_on == name else ""
        lines.append(
            f"| {label}{decides} | {part.rows} | `{part.digest[:16]}` | {_number(part.challenger)} | "
            f"{_number(part.champion)} | {_number(part.improvement, signed=True)} | {part.undefined or ''} |"
        )
    confidence = _number(decision.confidence)
    lines += [
        "",
        "## Bootstrap (paired, on the deciding rows)",
        "",
        "| | |",
        "|---|---|",
        f"| decided on | {decision.decided_on or '—'} |",
        f"| improvement | {_number(decision.improvement, signed=True)} |",
        f"| lower bound at confidence {confidence} | {_number(decision.lower_bound, signed=True)} |",
        f"| upper bound at confidence {confidence} | {_number(decision.upper_bound, signed=True)} |",
        f"| samples | {decision.bootstrap_samples if decision.bootstrap_samples is not None else '—'} |",
        "",
        "## Limits",
        "",
        "| | |",
        "|---|---|",
        f"| champion | {decision.champion_version or 'none'} |",
        f"| gate.min_metric | {_number(decision.min_metric)} |",
        f"| gate.min_improvement | {_number(decision.min_improvement)} |",
        f"| gate.max_regression | {_number(decision.max_regression)} |",
        f"| allowed loss on the fixed holdout ({decision.metric} units) | {_number(decision.allowed_regression)} |",
        f"| loss on the fixed holdout, at least (at confidence {confidence}) | "
        f"{_number(decision.fixed_loss_lower_bound, signed=True)} |",
    ]
    for name, value in decision.windows.items():
        shown = json.dumps(value, default=_plain, sort_keys=True)
        lines += ["", f"## {name}", "", f"```json\n{shown}\n```"]
    return "\n".join(lines)


def _plain(value: object) -> object:
    """numpy scalars and paths as plain JSON values."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def publish_gate(spec: ModelSpec, decision: GateDecision) -> None:
    """Publish the gate decision: its outcome first, then the reason and every number it used."""
    model = spec.name
    create_markdown_artifact(
        key=artifact_key(model, "gate"),
        markdown=gate_markdown(model, decision),
        description=f"{model}: gate {(decision.outcome or '').replace('_', ' ')}",
    )


def publish_lineage(spec: ModelSpec, lineage: Lineage) -> None:
    """Publish a packaged version's lineage as JSON."""
    text = f"# Lineage: {lineage.tag}\n\n```json\n{json.dumps(lineage.as_dict(), indent=2)}\n```\n"
    create_markdown_artifact(
        key=artifact_key(spec.name, "lineage"), markdown=text, description=f"{lineage.tag}: lineage"
    )


def publish_drift(spec: ModelSpec, drift: DriftReport, origin: str) -> None:
    """Publish a batch's or window's drift verdict per column: score, noise floor, threshold and status."""
    create_table_artifact(
        key=artifact_key(spec.name, "drift"),
        table=[
            {
                "column": c.column,
                "role": c.role,
                "kind": c.kind,
                "status": c.status,
                "rows": c.rows,
                "score": None if c.score is None else round(c.score, 4),
                "noise floor": None if c.floor is None else round(c.floor, 4),
                "effect": c.effect,
                "threshold": None if c.threshold is None else round(c.threshold, 4),
                "statistic": c.statistic or c.note,
            }
            for c in drift.columns
        ],
        description=f"{origin}: {drift.summary()}\nreport: {drift.report_path}",
    )
