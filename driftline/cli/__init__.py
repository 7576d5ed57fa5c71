"""The ``driftline`` command line. Imports stay inside commands so ``driftline --help`` starts fast."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftline.errors import DriftlineError
from driftline.oncall import events

if TYPE_CHECKING:
    from driftline.monitoring.drift import ColumnDrift
    from driftline.runtime.server import ServerInfo

app = typer.Typer(
    name="driftline",
    help="Workflow-as-code MLOps on Prefect 3: validate, profile, train, gate, package and promote models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(
    help="The managed local Prefect server (SQLite under .driftline/prefect).", no_args_is_help=True
)
app.add_typer(server_app, name="server")


JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON (stable keys, see README) instead of tables")]


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _fail(error: DriftlineError) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _connect() -> ServerInfo:
    """Make sure a Prefect API is reachable and exported as PREFECT_API_URL before Prefect is imported."""
    from driftline.runtime import server
    from driftline.settings import get_settings, quiet_telemetry

    quiet_telemetry()
    settings = get_settings()
    info = server.ensure(settings.prefect_home, settings.prefect_port)
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ.setdefault("PREFECT_UI_URL", info.ui_url)
    return info


def _completed_run_url(model: str, state: Any, info: ServerInfo) -> str:
    """The run's UI link; exit 1 with the run's own message if it did not complete."""
    run_url = f"{info.ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
    if not state.is_completed():
        typer.echo(f"{model}: run {state.name}: {state.message}\n  run: {run_url}", err=True)
        raise typer.Exit(code=1)
    return run_url


def _version_tag(model: str, version: str | None) -> str:
    """The BentoML tag of a model's version, or of its champion when no version is given."""
    from driftline.registry import open_registry

    registry = open_registry()
    if version is None:
        champion = registry.champion(model)
        if champion is None:
            raise DriftlineError(f"{model}: no champion yet (run `driftline train {model}`)")
        version = champion.version
    return registry.version(model, version).tag


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="model name: deployments/<model>.toml")],
    data: Annotated[str | None, typer.Option(help="path, glob or URL replacing the spec's file source")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a spec key for this run, e.g. estimator.params.max_depth=3"),
    ] = None,
    reason: Annotated[str, typer.Option(help="why this run; kept in the lineage")] = "manual",
) -> None:
    """Run the train flow for MODEL on the local Prefect server and say what the gate decided."""
    from driftline.loop.gate import Outcome
    from driftline.spec import load_spec, parse_override

    try:
        overrides = dict(parse_override(item) for item in set_ or [])
        load_spec(model, overrides)  # fail on a bad spec before any server work
        info = _connect()
        from flows.train import train as train_flow

        with events.run_tags():
            state = train_flow(model=model, data=data, overrides=overrides or None, reason=reason, return_state=True)
    except DriftlineError as error:
        raise _fail(error) from None
    run_url = _completed_run_url(model, state, info)
    outcome = state.result()
    if outcome.promoted:
        verdict = f"promoted {outcome.tag}"
    elif outcome.outcome == Outcome.UNSERVABLE and outcome.tag:
        verdict = f"unservable ({outcome.tag} packaged, not promoted)"
    else:
        verdict = outcome.outcome.replace("_", " ")
    typer.echo(f"{model}: {verdict}: {outcome.decision.reason}\n  run: {run_url}")


@app.command()
def status(model: Annotated[str, typer.Argument(help="model name")], as_json: JsonFlag = False) -> None:
    """Show MODEL's champion, its versions and the last gate decisions."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from driftline.registry import open_registry
    from driftline.spec import load_spec

    try:
        load_spec(model)
        registry = open_registry()
        champion = registry.champion(model)
        versions = registry.versions(model)
        decisions = registry.gate_decisions(model, limit=5)
        monitor_decisions = registry.decisions(model, limit=10)
    except DriftlineError as error:
        raise _fail(error) from None
    if as_json:
        tags = {record.version: record.tag for record in versions}
        _print_json(
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
            f"[bold]{model}[/]: champion [green]{champion.version}[/] since {champion.since:%Y-%m-%d %H:%M:%S} UTC"
        )
    else:
        console.print(f"[bold]{model}[/]: no champion yet (run `driftline train {model}`)")
    table = Table(title="versions", title_justify="left")
    for column in ("version", "created (UTC)", "metric", "rows", "data", "champion"):
        table.add_column(column, overflow="fold")
    for record in versions:
        lineage = record.lineage
        gate = lineage.gate
        table.add_row(
            record.version,
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
        gates.add_row(f"{decision.at:%Y-%m-%d %H:%M:%S}", verdict, decision.reason)
    console.print(gates)
    watch = Table(title="last monitor and retrain decisions", title_justify="left")
    for column in ("when (UTC)", "decision", "batch", "reason"):
        watch.add_column(column, overflow="fold")
    for item in monitor_decisions:
        watch.add_row(f"{item.at:%Y-%m-%d %H:%M:%S}", item.decision, (item.fingerprint or "")[:12], item.reason)
    console.print(watch)


@app.command()
def ledger(model: Annotated[str, typer.Argument(help="model name")], as_json: JsonFlag = False) -> None:
    """Show MODEL's promotion ledger: every promotion and rollback, oldest first."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from driftline.registry import open_registry

    try:
        entries = open_registry().ledger(model)
    except DriftlineError as error:
        raise _fail(error) from None
    if as_json:
        _print_json([asdict(entry) for entry in entries])
        return
    table = Table(title=f"{model} ledger", title_justify="left")
    for column in ("#", "when (UTC)", "action", "from", "to", "actor", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry.id),
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.action,
            entry.from_version or "-",
            entry.to_version,
            entry.actor,
            entry.reason,
        )
    Console().print(table)


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(metavar="MODEL[:VERSION]", help="a model (its champion) or model:version")],
    as_json: JsonFlag = True,
) -> None:
    """Print the lineage of a model version (the champion if no version is given) as JSON."""
    from driftline.registry import open_registry

    model, _, version = ref.partition(":")
    try:
        registry = open_registry()
        if not version:
            champion = registry.champion(model)
            if champion is None:
                raise DriftlineError(f"{model}: no champion yet; give MODEL:VERSION")
            version = champion.version
        record = registry.version(model, version)
    except DriftlineError as error:
        raise _fail(error) from None
    # As recorded: a lineage written by an older driftline shows the fields it had, not today's defaults.
    _print_json(record.lineage.model_dump(mode="json", by_alias=True, exclude_unset=True))


@app.command()
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

    try:
        spec = load_spec(model)
        pipeline(spec)
        suite = load_suite(spec.suite_path)
        head = None if no_data else check_head(spec, HEAD_ROWS)
    except DriftlineError as error:
        raise _fail(error) from None
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


@app.command()
def models(as_json: JsonFlag = False) -> None:
    """List the model specs in deployments/."""
    from driftline.spec import list_models

    if as_json:
        _print_json(list_models())
        return
    for name in list_models():
        typer.echo(name)


@app.command("serve-flows")
def serve_flows(
    models: Annotated[list[str] | None, typer.Argument(help="models to serve (default: every spec)")] = None,
    limit: Annotated[int | None, typer.Option(help="most flow runs at once")] = None,
) -> None:
    """Serve the retrain (nightly + drift trigger) and monitor deployments of every model from this process."""
    from deployments.serve import serve

    try:
        info = _connect()
        typer.echo(f"serving on {info.api_url} (UI {info.ui_url}); Ctrl-C stops")
        serve(models, limit)
    except DriftlineError as error:
        raise _fail(error) from None


@app.command()
def monitor(model: Annotated[str, typer.Argument(help="model name")]) -> None:
    """Run the monitor flow for MODEL now: process waiting batches, score drift, apply the retrain policy."""
    try:
        info = _connect()
        from flows.monitor import monitor as monitor_flow

        with events.run_tags():
            state = monitor_flow(model=model, return_state=True)
    except DriftlineError as error:
        raise _fail(error) from None
    run_url = _completed_run_url(model, state, info)
    outcomes = state.result()
    if not outcomes:
        typer.echo(f"{model}: no new batches\n  run: {run_url}")
    for outcome in outcomes:
        drifted = ", ".join(outcome.drifted) or "none"
        decision = f"; {outcome.decision.decision}: {outcome.decision.reason}" if outcome.decision else ""
        typer.echo(f"{model}: {outcome.origin}: {outcome.status}, drifted columns: {drifted}{decision}")
    typer.echo(f"  run: {run_url}")


@app.command()
def drift(model: Annotated[str, typer.Argument(help="model name")], as_json: JsonFlag = False) -> None:
    """Show the drift verdicts of MODEL's latest monitored batch or traffic window, with the report path."""
    from rich.console import Console
    from rich.table import Table

    from driftline.registry import SCORED, BatchStatus, open_registry

    try:
        scored = [b for b in open_registry().batches(model, status=SCORED) if b.drift is not None]
    except DriftlineError as error:
        raise _fail(error) from None
    if not scored:
        if as_json:
            _print_json({"model": model, "batch": None, "drifted": [], "columns": []})
            return
        typer.echo(f"{model}: no monitored batch yet (run `driftline monitor {model}`)")
        return
    latest = scored[0]
    assert latest.drift is not None
    columns = [_drift_column(column, latest.drift.legacy) for column in latest.drift.columns]
    if as_json:
        _print_json(
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
    table = Table(title=f"{model}: {what} vs version {latest.champion_version}", title_justify="left")
    for name in ("column", "role", "kind", "score", "noise floor", "threshold", "status"):
        table.add_column(name, overflow="fold")
    colour = {"drift": "red", "unscorable": "yellow", "insufficient_data": "yellow", "ok": "green"}
    for column in sorted(columns, key=lambda c: (c["status"] == "ok", -(c["score"] or 0.0))):
        table.add_row(
            column["column"],
            column["role"],
            column["kind"],
            "n/a" if column["score"] is None else f"{column['score']:.4f}",
            "n/a" if column["floor"] is None else f"{column['floor']:.4f}",
            "n/a" if column["threshold"] is None else f"{column['threshold']:.4f}",
            f"[{colour.get(column['status'], 'white')}]{column['status']}[/]"
            + (f" ({column['note']})" if column["note"] else ""),
        )
    console = Console()
    console.print(table)
    console.print(f"report: {latest.report_path}")


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


@app.command()
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
    except (DriftlineError, ValueError) as error:
        raise _fail(error if isinstance(error, DriftlineError) else DriftlineError(str(error))) from None

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
        _print_json({"model": model, "batches": proposed, "policy": proposed_rule.model_dump(), "summary": summary})
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


@app.command()
def retrain(
    model: Annotated[str, typer.Argument(help="model name")],
    reason: Annotated[str, typer.Option(help="why, kept in the lineage and decisions")] = "manual",
) -> None:
    """Run the retrain flow for MODEL now, as the deployment would: the source plus the recent window, gated."""
    from driftline.spec import load_spec

    try:
        load_spec(model)
        info = _connect()
        from flows.retrain import retrain as retrain_flow

        with events.run_tags():
            state = retrain_flow(model=model, reason=reason, return_state=True)
    except DriftlineError as error:
        raise _fail(error) from None
    run_url = _completed_run_url(model, state, info)
    outcome = state.result()
    trained = outcome.trained
    verdict = f"promoted {trained.tag}" if trained is not None and trained.promoted else outcome.decision
    typer.echo(f"{model}: retrain {verdict}: {outcome.reason}\n  run: {run_url}")


@app.command()
def evaluate(
    ref: Annotated[str, typer.Argument(metavar="MODEL[:VERSION]", help="a model (its champion) or model:version")],
    data: Annotated[str, typer.Option(help="labeled rows: a Parquet/CSV path, glob or fsspec URL")],
    as_json: JsonFlag = False,
) -> None:
    """Print a version's metrics on a labeled file, keyed by metric name."""
    from driftline.loop import data as batches
    from driftline.loop import modeling, store
    from driftline.spec import load_spec

    model, _, version = ref.partition(":")
    try:
        spec = load_spec(model)
        tag = _version_tag(model, version or None)
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
        metrics = modeling.evaluate(store.load(tag), labeled, spec)
    except DriftlineError as error:
        raise _fail(error) from None
    result = {
        "model": model,
        "version": tag.split(":", 1)[1],
        "rows": metrics.rows,
        "metrics": metrics.values,
        "undefined": metrics.undefined,
    }
    if as_json:
        _print_json(result)
        return
    typer.echo(f"{tag} on {data} ({metrics.rows} labeled rows):")
    for name, value in metrics.values.items():
        marker = "  (gate metric)" if name == spec.metric.name else ""
        shown = "undefined" if value is None or value != value else f"{value:.4f}"
        typer.echo(f"  {name:<10} {shown}{marker}")
    for name, why in metrics.undefined.items():
        marker = "  (gate metric)" if name == spec.metric.name else ""
        typer.echo(f"  {name:<10} undefined: {why}{marker}")


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str | None, typer.Option(help="a version (default: the champion)")] = None,
    port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1")] = 3000,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
) -> None:
    """Serve MODEL's champion (or --version) over HTTP with BentoML, the training schema enforced on requests."""
    import shutil
    import sys

    from driftline.serving.config import config_for, resolve_token
    from driftline.settings import get_settings, quiet_telemetry
    from driftline.spec import load_spec

    try:
        tag = _version_tag(model, version)
        config = config_for(load_spec(model), tag, follow=version is None)
        auth = resolve_token(config) is not None  # fail here, not in every worker, if the token is missing
    except DriftlineError as error:
        raise _fail(error) from None
    quiet_telemetry()
    os.environ.update(config.to_env())
    os.environ.setdefault("BENTOML_HOME", str(get_settings().bentoml_home))
    bentoml_cli = shutil.which("bentoml", path=os.path.dirname(sys.executable)) or "bentoml"
    profiling = (
        f"traffic profiled in {config.window_seconds / 60:g}-minute windows into {config.profile_store}"
        if config.profile_store
        else "traffic profiling off"
    )
    typer.echo(
        f"serving {tag} on http://{host}:{port}\n"
        f"  POST /predict, /predict_one{' (bearer token required)' if auth else ''}; GET /health, /readyz\n"
        f"  {profiling}\n"
        + (
            "  follows the champion: a promotion or rollback restarts the worker on the new one"
            if config.follow
            else ""
        )
    )
    os.execv(
        bentoml_cli,
        [bentoml_cli, "serve", "driftline.serving.service:ModelService", "--host", host, "--port", str(port)],
    )


@app.command()
def build(
    model: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str | None, typer.Option(help="a version (default: the champion)")] = None,
) -> None:
    """Build a Bento for MODEL's champion (or --version): the service, the model and pinned requirements."""
    from driftline.serving.bento import build as build_bento
    from driftline.serving.config import config_for
    from driftline.settings import get_settings
    from driftline.spec import load_spec

    try:
        tag = _version_tag(model, version)
        bento = build_bento(config_for(load_spec(model), tag), get_settings().project_dir)
    except DriftlineError as error:
        raise _fail(error) from None
    typer.echo(
        f"built Bento {bento} for {tag}\n  run it: bentoml serve {bento}\n  image:  bentoml containerize {bento}"
    )


@app.command()
def deploy(
    models: Annotated[list[str] | None, typer.Argument(help="models (default: every spec)")] = None,
) -> None:
    """Create or replace each model's on-call automations on the Prefect server, from its [notify] section."""
    from driftline.oncall.automations import deploy as deploy_automations
    from driftline.spec import list_models, load_spec

    try:
        info = _connect()
        for name in models or list_models():
            spec = load_spec(name)
            deployed = deploy_automations(spec)
            if not deployed:
                typer.echo(
                    f"{name}: notify.blocks is empty in {spec.label}: no notifications (its automations removed)"
                )
                continue
            typer.echo(f"{name}: {len(deployed)} automations sending through {', '.join(spec.notify.blocks)}")
            for automation in deployed:
                typer.echo(f"  {automation.name:<40} on {automation.trigger}")
        typer.echo(f"  see them: {info.ui_url}/automations")
    except DriftlineError as error:
        raise _fail(error) from None


@app.command()
def rollback(
    model: Annotated[str, typer.Argument(help="model name")],
    to: Annotated[str | None, typer.Option(help="version to restore (default: the one the champion replaced)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the ledger")] = "manual rollback",
) -> None:
    """Make the last known good version (or --to) MODEL's champion again; recorded in the ledger, notified."""
    import getpass

    from driftline.oncall import alerts
    from driftline.oncall.rollback import rollback as roll_back

    actor = os.environ.get("DRIFTLINE_ACTOR") or getpass.getuser()
    try:
        entry = roll_back(model, to, actor, reason)
    except DriftlineError as error:
        raise _fail(error) from None
    typer.echo(f"{model}: champion is {entry.to_version} again (was {entry.from_version}); ledger entry {entry.id}")
    assert entry.from_version is not None
    try:
        _connect()
        events.emit(
            events.MODEL_ROLLED_BACK,
            model,
            {"version": entry.to_version, "previous": entry.from_version, "actor": actor, "reason": reason},
            alerts.rolled_back(model, entry.to_version, entry.from_version, actor, reason),
        )
    except DriftlineError as error:
        typer.echo(f"  (not notified: {error})", err=True)
    typer.echo(f"  a service started with `driftline serve {model}` (no --version) follows the champion")


@app.command()
def replay(
    model: Annotated[str, typer.Argument(help="model name")],
    batch: Annotated[str, typer.Argument(help="quarantine folder name (or its start, or the batch fingerprint's)")],
) -> None:
    """Re-validate a quarantined batch with the current suite; if it passes, return it to where it came from.

    A landing batch moves back to its landing path; a source batch goes back only if its source file is gone (it
    was never moved). The registry then lets the monitor score it. Nothing is written over a file that is there.
    """
    from driftline.oncall.replay import replay as replay_batch
    from driftline.spec import load_spec

    try:
        done = replay_batch(load_spec(model), batch)
    except DriftlineError as error:
        raise _fail(error) from None
    if not done.passes:
        typer.echo(
            f"{model}: {done.folder.name} still fails; it stays in quarantine\n{done.report.summary()}", err=True
        )
        raise typer.Exit(code=1)
    typer.echo(f"{model}: {done.folder.name} passes {done.report.suite} now; {done.describe()}")
    if done.released:
        typer.echo("  registry: its quarantined claim is released, so it is scored, not filed as a duplicate")
    typer.echo(f"  {done.next_step(model)}")


@app.command()
def demo() -> None:
    """Run the whole loop on the synthetic fraud data, on a Prefect server of the demo's own (kept for browsing)."""
    from driftline.cli.demo import connect, run

    # The demo prints its own timeline; Prefect's console lines would bury it. Runs still log fully to the UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    try:
        run(connect())
    except DriftlineError as error:
        raise _fail(error) from None


ServerHome = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="the server's home (default: the project's, .driftline/prefect; the demo's is .driftline/demo/prefect)",
    ),
]


@server_app.command("start")
def server_start(home: ServerHome = None) -> None:
    """Start the managed Prefect server (or report the one running) and print its addresses."""
    from driftline.runtime import server
    from driftline.settings import get_settings

    settings = get_settings()
    try:
        if home is None:
            info = server.start(settings.prefect_home, settings.prefect_port)
        else:
            info = server.start_own(home.resolve(), settings.prefect_port)
    except DriftlineError as error:
        raise _fail(error) from None
    typer.echo(f"Prefect UI:  {info.ui_url}\nPrefect API: {info.api_url}\nexport PREFECT_API_URL={info.api_url}")


@server_app.command("stop")
def server_stop(home: ServerHome = None) -> None:
    """Stop the managed Prefect server (or the one driftline started under --home, e.g. the demo's)."""
    from driftline.runtime import server
    from driftline.settings import get_settings

    where = (home or get_settings().prefect_home).resolve()
    stopped = server.stop(where)
    typer.echo(f"stopped the server of {where}" if stopped else f"no managed server was running in {where}")


@server_app.command("status")
def server_status(home: ServerHome = None) -> None:
    """Say whether the Prefect server driftline uses (PREFECT_API_URL, the managed one, or --home's) is answering."""
    from driftline.runtime import server
    from driftline.settings import get_settings

    if home is not None:
        info = server.running(home.resolve())
        answering = info is not None
        typer.echo(f"{info.api_url}: healthy (home {home})" if info else f"no server of {home} is answering")
    else:
        api = os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{get_settings().prefect_port}/api"
        answering = server.healthy(api)
        typer.echo(f"{api}: {'healthy' if answering else 'not answering'}")
    if not answering:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
