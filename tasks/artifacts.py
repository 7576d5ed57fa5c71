"""Prefect artifacts that show a run's evidence in the UI: validation, metrics, gate decision, lineage.

Plain functions called from a flow (artifacts attach to the current run). Keys are lowercase letters, digits and
dashes, as Prefect requires.
"""

from __future__ import annotations

import json
import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from driftline.gate import GateDecision
from driftline.lineage import Lineage
from driftline.modeling import Metrics
from driftline.validation import ValidationReport


def artifact_key(model: str, what: str, project: str | None = None) -> str:
    """Key an artifact ``<project>-<model>-<what>``, so projects sharing a server keep their own history."""
    from driftline.events import current_project

    key = f"{project or current_project()}-{model}-{what}"
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", key.lower())).strip("-")


def publish_validation(model: str, reports: list[ValidationReport]) -> None:
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


def publish_metrics(model: str, challenger: Metrics, champion: Metrics | None, champion_version: str | None) -> None:
    rows = [
        {
            "metric": name,
            "challenger": round(value, 6),
            f"champion {champion_version or '(none)'}": round(champion.values[name], 6) if champion else None,
            "gate metric": name == challenger.primary,
        }
        for name, value in challenger.values.items()
    ]
    create_table_artifact(
        key=artifact_key(model, "metrics"),
        table=rows,
        description=f"{model}: holdout metrics ({challenger.rows} rows)",
    )


def publish_gate(model: str, decision: GateDecision) -> None:
    verdict = "ACCEPTED" if decision.accepted else "REJECTED"
    champion = f"{decision.champion:.4f} ({decision.champion_version})" if decision.champion is not None else "none"
    text = "\n".join(
        [
            f"# Gate {verdict}: {model}",
            "",
            decision.reason,
            "",
            "| | |",
            "|---|---|",
            f"| metric | {decision.metric} ({'higher' if decision.maximize else 'lower'} is better) |",
            f"| challenger | {decision.challenger:.4f} |",
            f"| champion | {champion} |",
            f"| min metric | {decision.min_metric} |",
            f"| min improvement | {decision.min_improvement} |",
            f"| holdout | {decision.holdout_rows} rows, digest `{decision.holdout_digest[:16]}` |",
        ]
    )
    create_markdown_artifact(
        key=artifact_key(model, "gate"), markdown=text, description=f"{model}: gate {verdict.lower()}"
    )


def publish_lineage(lineage: Lineage) -> None:
    text = f"# Lineage: {lineage.tag}\n\n```json\n{json.dumps(lineage.as_dict(), indent=2)}\n```\n"
    create_markdown_artifact(
        key=artifact_key(lineage.model, "lineage"), markdown=text, description=f"{lineage.tag}: lineage"
    )
