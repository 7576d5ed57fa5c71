"""Commands that run a flow now, or serve the deployments that run them: train, monitor, retrain, serve-flows, demo."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from driftline.cli.base import completed_run_url, connect
from driftline.oncall import events


def _run_here(flow: Any, **parameters: Any) -> Any:
    """Run a flow in this process as a run on the server; return its final state.

    First mark Crashed the runs whose process on this host died (so a killed run never stays Running, and on-call
    hears of it). The run carries the project's tag (its run-failed automation sees it) and this process's (for that
    reconciling); its task runs carry none, as a deployment's do: Prefect asks the server for concurrency slots
    for each tagged task run, ~50 ms a task (0.9 s of a 10k-row train run), where none are set.
    """
    from prefect.client.orchestration import get_client
    from prefect.context import TagsContext
    from prefect.flow_engine import run_flow
    from prefect.states import Pending

    from driftline.runtime import zombies

    for crashed in zombies.reconcile():
        typer.echo(
            f"marked Crashed: {crashed.name} ({crashed.run_id}): its process ({crashed.holder}) is gone", err=True
        )
    with events.run_tags(), zombies.holding():
        tags = set(TagsContext.get().current_tags)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(flow, parameters=flow.serialize_parameters(parameters), tags=tags, state=Pending())
    return run_flow(flow, flow_run=run, parameters=parameters, return_type="state")


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

    overrides = dict(parse_override(item) for item in set_ or [])
    load_spec(model, overrides)  # fail on a bad spec before any server work
    info = connect()
    from flows.train import train as train_flow

    state = _run_here(train_flow, model=model, data=data, overrides=overrides or None, reason=reason)
    run_url = completed_run_url(model, state, info)
    outcome = state.result()
    if outcome.promoted:
        verdict = f"promoted {outcome.tag}"
    elif outcome.outcome == Outcome.UNSERVABLE and outcome.tag:
        verdict = f"unservable ({outcome.tag} packaged, not promoted)"
    else:
        verdict = outcome.outcome.replace("_", " ")
    typer.echo(f"{model}: {verdict}: {outcome.decision.reason}\n  run: {run_url}")


def monitor(model: Annotated[str, typer.Argument(help="model name")]) -> None:
    """Run the monitor flow for MODEL now: process waiting batches, score drift, apply the retrain policy."""
    info = connect()
    from flows.monitor import monitor as monitor_flow

    state = _run_here(monitor_flow, model=model)
    run_url = completed_run_url(model, state, info)
    outcomes = state.result()
    if not outcomes:
        typer.echo(f"{model}: no new batches\n  run: {run_url}")
    for outcome in outcomes:
        drifted = ", ".join(outcome.drifted) or "none"
        decision = f"; {outcome.decision.decision}: {outcome.decision.reason}" if outcome.decision else ""
        typer.echo(f"{model}: {outcome.origin}: {outcome.status}, drifted columns: {drifted}{decision}")
    typer.echo(f"  run: {run_url}")


def retrain(
    model: Annotated[str, typer.Argument(help="model name")],
    reason: Annotated[str, typer.Option(help="why, kept in the lineage and decisions")] = "manual",
) -> None:
    """Run the retrain flow for MODEL now, as the deployment would: the source plus the recent window, gated."""
    from driftline.spec import load_spec

    load_spec(model)
    info = connect()
    from flows.retrain import retrain as retrain_flow

    state = _run_here(retrain_flow, model=model, reason=reason)
    run_url = completed_run_url(model, state, info)
    outcome = state.result()
    trained = outcome.trained
    verdict = f"promoted {trained.tag}" if trained is not None and trained.promoted else outcome.decision
    typer.echo(f"{model}: retrain {verdict}: {outcome.reason}\n  run: {run_url}")


def serve_flows(
    models: Annotated[list[str] | None, typer.Argument(help="models to serve (default: every spec)")] = None,
    limit: Annotated[int | None, typer.Option(help="most flow runs at once")] = None,
) -> None:
    """Serve the retrain (nightly + drift trigger) and monitor deployments of every model from this process."""
    from deployments.serve import serve

    info = connect()
    typer.echo(f"serving on {info.api_url} (UI {info.ui_url}); Ctrl-C stops")
    serve(models, limit)


def demo() -> None:
    """Run the whole loop on the synthetic fraud data, on a Prefect server of the demo's own (kept for browsing)."""
    from driftline.cli import demo as demo_project

    # The demo prints its own timeline; Prefect's console lines would bury it. Runs still log fully to the UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    demo_project.run(demo_project.connect())  # the demo's own server, never the project's
