"""Commands about drift: the latest verdicts (drift) and the retrain policy replayed over history (backtest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftline.cli.base import JsonFlag, print_json
from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from driftline.monitoring.drift import ColumnDrift


def drift(model: Annotated[str, typer.Argument(help="model name")], as_json: JsonFlag = False) -> None:
    """Show the drift verdicts of MODEL's latest monitored batch or traffic window, with the report path."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from driftline.registry import SCORED, BatchStatus, open_registry

    scored = [b for b in open_registry().batches(model, status=SCORED) if b.drift is not None]
    if not scored:
        if as_json:
            print_json({"model": model, "batch": None, "drifted": [], "columns": []})
            return
        typer.echo(f"{model}: no monitored batch yet (run `driftline monitor {model}`)")
        return
    latest = scored[0]
    assert latest.drift is not None
    columns = [_drift_column(column, latest.drift.legacy) for column in latest.drift.columns]
    if as_json:
        print_json(
            {
                "model": model,
                "batch": latest.fingerprint,
                "origin": latest.origin,
                "source": "traffic" if latest.status == BatchStatus.WINDOW else "batch",
                "version": latest.champion_version,
                "rows": latest.rows,
                "processed_at": latest.processed_at,
                "drifted": [c["column"] for c in columns if c["status"] == "drift"],
                "kinds": sorted({c["role"] for c in columns if c["status"] == "drift"}),
                "columns": columns,
                "report": latest.report_path,
            }
        )
        return
    what = latest.origin if latest.status == BatchStatus.ACCEPTED else f"traffic {latest.fingerprint}"
    table = Table(title=escape(f"{model}: {what} vs version {latest.champion_version}"), title_justify="left")
    for name in ("column", "role", "kind", "score", "noise floor", "threshold", "status"):
        table.add_column(name, overflow="fold")
    colour = {"drift": "red", "unscorable": "yellow", "insufficient_data": "yellow", "ok": "green"}
    for column in sorted(columns, key=lambda c: (c["status"] == "ok", -(c["score"] or 0.0))):
        table.add_row(
            escape(column["column"]),
            column["role"],
            column["kind"],
            "n/a" if column["score"] is None else f"{column['score']:.4f}",
            "n/a" if column["floor"] is None else f"{column['floor']:.4f}",
            "n/a" if column["threshold"] is None else f"{column['threshold']:.4f}",
            f"[{colour.get(column['status'], 'white')}]{column['status']}[/]"
            + (f" ({escape(column['note'])})" if column["note"] else ""),
        )
    console = Console()
    console.print(table)
    console.print(f"report: {escape(str(latest.report_path))}")


def _drift_column(column: ColumnDrift, legacy: bool) -> dict[str, Any]:
    """A stored column verdict with the stable ``--json`` keys; records stored before statuses existed (``legacy``)
    had no effect size or row count of their own, so those stay null."""
    return {
        "column": column.column,
        "kind": column.kind,
        "role": column.role,
        "score": column.score,
        "threshold": column.threshold,
        "floor": column.floor,
        "effect": None if legacy else column.effect,
        "status": column.status,
        "statistic": column.statistic,
        "rows": None if legacy else column.rows,
        "note": column.note,
    }


def backtest(
    model: Annotated[str, typer.Argument(help="model name")],
    threshold: Annotated[
        float | None, typer.Option(help="a proposed drift.threshold (effect size); drift.columns still apply")
    ] = None,
    min_drifted: Annotated[int | None, typer.Option(help="a proposed drift.min_drifted")] = None,
    of_last: Annotated[int | None, typer.Option(help="a proposed drift.of_last")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay MODEL's stored drift scores through the current retrain policy, or a proposed one, oldest first.

    Each stored column verdict keeps its score and noise floor, so a proposed effect size re-judges it exactly as
    the monitor would have: try a threshold on history before making it.
    """
    from dataclasses import replace

    from driftline.monitoring import drift as drift_scores
    from driftline.monitoring import policy
    from driftline.registry import SCORED, open_registry
    from driftline.spec import load_spec

    try:
        spec = load_spec(model)
        changes = {"threshold": threshold, "min_drifted": min_drifted, "of_last": of_last}
        proposed_rule = spec.drift.model_validate(
            spec.drift.model_dump() | {k: v for k, v in changes.items() if v is not None}
        )
        scored = open_registry().batches(model, status=SCORED)
        history = list(reversed([b for b in scored if b.processed_at]))
    except DriftlineError:
        raise
    except ValueError as error:  # a proposed value the drift section refuses (pydantic's ValidationError)
        raise DriftlineError(str(error)) from None

    def replay(rule: Any) -> list[dict[str, Any]]:
        flags: list[bool | None] = []
        last_request = None
        rows = []
        for record in history:
            verdict = record.drift
            if verdict is not None and verdict.columns:
                # Re-judged, every column has a status under this rule: old records included.
                rejudged = [replace(c, status=drift_scores.rejudge(c, rule.effect(c.column))) for c in verdict.columns]
                verdict = replace(verdict, columns=tuple(rejudged), legacy=False)
            flags.insert(0, policy.flagged(verdict, rule.retrain_on, fallback=record.drift_detected))
            assert record.processed_at is not None
            decision = policy.decide(flags, rule, last_request, record.processed_at)
            if decision.retrain:
                last_request = record.processed_at
            drifted = [c.column for c in verdict.columns if c.drifted] if verdict is not None else []
            rows.append(
                {
                    "at": record.processed_at,
                    "batch": record.fingerprint,
                    "origin": record.origin,
                    "drifted": drifted,
                    "decision": decision.decision,
                    "reason": decision.reason,
                }
            )
        return rows

    current, proposed = replay(spec.drift), replay(proposed_rule)
    summary = {
        name: {
            "drifted_batches": sum(bool(r["drifted"]) for r in rows),
            "retrain_requests": sum(r["decision"] == policy.RETRAIN_REQUESTED for r in rows),
        }
        for name, rows in (("current", current), ("proposed", proposed))
    }
    if as_json:
        print_json({"model": model, "batches": proposed, "policy": proposed_rule.model_dump(), "summary": summary})
        return
    for row in proposed:
        label = row["batch"][:12] if not row["batch"].startswith("window:") else row["batch"]
        drifted = ",".join(row["drifted"]) or "-"
        typer.echo(f"{row['at']:%Y-%m-%d %H:%M:%S}  {label}  {row['decision']:<20} {drifted:<24} {row['reason']}")
    what = "the proposed policy" if any(v is not None for v in changes.values()) else "the policy"
    typer.echo(
        f"{model}: {len(history)} batches and traffic windows replayed; {what} would have flagged "
        f"{summary['proposed']['drifted_batches']} and requested {summary['proposed']['retrain_requests']} "
        f"retrain(s) (current: {summary['current']['drifted_batches']} flagged, "
        f"{summary['current']['retrain_requests']} requested)"
    )
