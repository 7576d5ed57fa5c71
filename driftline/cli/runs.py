"""Commands that run a flow now, or serve the deployments that run them: train, monitor, retrain, serve-flows, demo."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from driftline.cli.base import completed_run_url, connect
from driftline.oncall import events


@contextmanager
def _run_here() -> Iterator[None]:
    """Around a flow run started by this command: first mark Crashed the runs whose process on this host died (so a
    killed run never stays Running, and on-call hears of it), then tag the new run with the project and this process.
    """
    from driftline.runtime import zombies

    for crashed in zombies.reconcile():
        typer.echo(
            f"marked Crashed: {crashed.name} ({crashed.run_id}): its process ({crashed.holder}) is gone", err=True
        )
    with events.run_tags(), zombies.holding():
        yield


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

    with _run_here():
        state = train_flow(model=model, data=data, overrides=overrides or None, reason=reason, return_state=True)
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

    with _run_here():
        state = monitor_flow(model=model, return_state=True)
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

    with _run_here():
        state = retrain_flow(model=model, reason=reason, return_state=True)
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
