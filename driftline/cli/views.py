"""Commands that read the registry and the specs: status, ledger, lineage, check, models, evaluate."""

from __future__ import annotations

from typing import Annotated

import typer

from driftline.cli.base import JsonFlag, print_json
from driftline.errors import DriftlineError


def status(model: Annotated[str, typer.Argument(help="model name")], as_json: JsonFlag = False) -> None:
    """Show MODEL's champion, its versions and the last gate decisions."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from driftline.registry import open_registry
    from driftline.spec import load_spec

    load_spec(model)
    registry = open_registry()
    champion = registry.champion(model)
    versions = registry.versions(model)
    decisions = registry.gate_decisions(model, limit=5)
    monitor_decisions = registry.decisions(model, limit=10)
    if as_json:
        tags = {record.version: record.tag for record in versions}
        print_json(
            {
                "model": model,
                "champion": asdict(champion) | {"tag": tags.get(champion.version)} if champion else None,
                "versions": [
                    {
                        "version": r.version,
                        "tag": r.tag,
                        "created_at": r.created_at,
                        "metrics": r.lineage.metrics,
                    }
                    for r in versions
                ],
                "gate_decisions": [asdict(d) for d in decisions],
                "decisions": [asdict(d) for d in monitor_decisions],
            }
        )
        return
    console = Console()
    if champion:
        console.print(
            f"[bold]{escape(model)}[/]: champion [green]{escape(champion.version)}[/] "
            f"since {champion.since:%Y-%m-%d %H:%M:%S} UTC"
        )
    else:
        console.print(f"[bold]{escape(model)}[/]: no champion yet (run `driftline train {escape(model)}`)")
    table = Table(title="versions", title_justify="left")
    for column in ("version", "created (UTC)", "metric", "rows", "data", "champion"):
        table.add_column(column, overflow="fold")
    for record in versions:
        lineage = record.lineage
        gate = lineage.gate
        table.add_row(
            escape(record.version),
            f"{record.created_at:%Y-%m-%d %H:%M:%S}",
            f"{gate.get('metric')} " + ("n/a" if gate.get("challenger") is None else f"{gate['challenger']:.4f}"),
            str(lineage.rows),
            lineage.data_fingerprint[:12],
            "*" if champion and champion.version == record.version else "",
        )
    console.print(table)
    gates = Table(title="last gate decisions", title_justify="left")
    for column in ("when (UTC)", "decision", "reason"):
        gates.add_column(column, overflow="fold")
    for decision in decisions:
        # Records from before the gate had outcomes carry only accepted/rejected.
        outcome = decision.evidence.get("outcome") or ("accepted" if decision.accepted else "rejected")
        color = "green" if outcome == "accepted" else "yellow" if outcome in ("not_better", "unchanged") else "red"
        verdict = f"[{color}]{outcome.replace('_', ' ')}[/]"
        gates.add_row(f"{decision.at:%Y-%m-%d %H:%M:%S}", verdict, escape(decision.reason))
    console.print(gates)
    watch = Table(title="last monitor and retrain decisions", title_justify="left")
    for column in ("when (UTC)", "decision", "batch", "reason"):
        watch.add_column(column, overflow="fold")
    for item in monitor_decisions:
        watch.add_row(
            f"{item.at:%Y-%m-%d %H:%M:%S}", item.decision, escape((item.fingerprint or "")[:12]), escape(item.reason)
        )
    console.print(watch)


def ledger(model: Annotated[str, typer.Argument(help="model name")], as_json: JsonFlag = False) -> None:
    """Show MODEL's promotion ledger: every promotion and rollback, oldest first."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from driftline.registry import open_registry

    entries = open_registry().ledger(model)
    if as_json:
        print_json([asdict(entry) for entry in entries])
        return
    table = Table(title=f"{escape(model)} ledger", title_justify="left")
    for column in ("#", "when (UTC)", "action", "from", "to", "actor", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry.id),
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.action,
            escape(entry.from_version or "-"),
            escape(entry.to_version),
            escape(entry.actor),
            escape(entry.reason),
        )
    Console().print(table)


def lineage(
    ref: Annotated[str, typer.Argument(metavar="MODEL[:VERSION]", help="a model (its champion) or model:version")],
    as_json: JsonFlag = True,
) -> None:
    """Print the lineage of a model version (the champion if no version is given) as JSON."""
    from driftline.serving.config import version_of

    model, _, version = ref.partition(":")
    record = version_of(model, version or None, no_champion="no champion yet; give MODEL:VERSION")
    # As recorded: a lineage written by an older driftline shows the fields it had, not today's defaults.
    print_json(record.lineage.model_dump(mode="json", by_alias=True, exclude_unset=True))


def check(
    model: Annotated[str, typer.Argument(help="model name")],
    no_data: Annotated[
        bool, typer.Option("--no-data", help="check the spec and suite only, without reading the source")
    ] = False,
) -> None:
    """Check MODEL's spec and suite, then the head of its source: declared columns, the target, their types.

    Reads at most the first 1000 rows (of the first file, or through a SQL LIMIT); needs no Prefect server.
    """
    from driftline.loop.data import HEAD_ROWS, check_head
    from driftline.loop.modeling import pipeline
    from driftline.loop.validation import load_suite
    from driftline.spec import load_spec

    spec = load_spec(model)
    pipeline(spec)
    suite = load_suite(spec.suite_path)
    head = None if no_data else check_head(spec, HEAD_ROWS)
    typer.echo(
        f"{spec.label}: ok ({spec.task}, {spec.estimator.kind}, {len(spec.features.columns)} features; "
        f"{spec.suite_path.name}: {len(suite.expectations)} expectations)"
    )
    if head is None:
        typer.echo("  data: not read (--no-data)")
        return
    typer.echo(f"  data: {head.summary()}; every declared column present with a usable type:")
    for key, column, dtype in head.checked:
        typer.echo(f"    {key:<22} {column:<24} {dtype}")


def models(as_json: JsonFlag = False) -> None:
    """List the model specs in deployments/."""
    from driftline.spec import list_models

    if as_json:
        print_json(list_models())
        return
    for name in list_models():
        typer.echo(name)


def evaluate(
    ref: Annotated[str, typer.Argument(metavar="MODEL[:VERSION]", help="a model (its champion) or model:version")],
    data: Annotated[str, typer.Option(help="labeled rows: a Parquet/CSV path, glob or fsspec URL")],
    as_json: JsonFlag = False,
) -> None:
    """Print a version's metrics on a labeled file, keyed by metric name."""
    from driftline.loop import data as batches
    from driftline.loop import modeling, store
    from driftline.serving.config import version_of
    from driftline.spec import load_spec

    model, _, version = ref.partition(":")
    spec = load_spec(model)
    record = version_of(model, version or None)
    tag = record.tag
    frame = batches.combine(batches.load_source(spec, data)).frame
    missing = [c for c in [*spec.features.columns, spec.target] if c not in frame.columns]
    if missing:
        raise DriftlineError(
            f"{data}: lacks column(s) {missing} that {tag} needs (features and the target '{spec.target}'); "
            f"found {list(frame.columns)}"
        )
    labeled = frame[frame[spec.target].notna()]
    if labeled.empty:
        raise DriftlineError(f"{data}: no row has a value in the target column '{spec.target}'")
    metrics = modeling.evaluate(store.load(tag, record.lineage.model_files), labeled, spec)
    result = {
        "model": model,
        "version": tag.split(":", 1)[1],
        "rows": metrics.rows,
        "metrics": metrics.values,
        "undefined": metrics.undefined,
    }
    if as_json:
        print_json(result)
        return
    typer.echo(f"{tag} on {data} ({metrics.rows} labeled rows):")
    for name, value in metrics.values.items():
        marker = "  (gate metric)" if name == spec.metric.name else ""
        shown = "undefined" if value is None or value != value else f"{value:.4f}"
        typer.echo(f"  {name:<10} {shown}{marker}")
    for name, why in metrics.undefined.items():
        marker = "  (gate metric)" if name == spec.metric.name else ""
        typer.echo(f"  {name:<10} undefined: {why}{marker}")
