"""``driftline server start|stop|status``: the managed local Prefect server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

server_app = typer.Typer(
    help="The managed local Prefect server (SQLite under .driftline/prefect).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ServerHome = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="the server's home (default: the project's, .driftline/prefect; the demo's is .driftline/demo/prefect)",
    ),
]


def server_start(
    home: ServerHome = None,
    warm: Annotated[
        bool,
        typer.Option(
            "--warm",
            help="also start the warm worker: it imports the heavy libraries once and runs each later command "
            "(check, monitor, train, ...) in a forked child, in about a second instead of ten",
        ),
    ] = False,
) -> None:
    """Start the managed Prefect server (or report the one running) and print its addresses."""
    from driftline.runtime import server
    from driftline.settings import get_settings

    settings = get_settings()
    if home is None:
        info = server.start(settings.prefect_home, settings.prefect_port)
    else:
        info = server.start_own(home.resolve(), settings.prefect_port)
    typer.echo(f"Prefect UI:  {info.ui_url}\nPrefect API: {info.api_url}\nexport PREFECT_API_URL={info.api_url}")
    if warm:
        from driftline.cli.worker import RUNNER
        from driftline.runtime import warm as worker

        pid = worker.start(settings.state_dir, RUNNER)
        typer.echo(f"warm worker: pid {pid}, {worker.socket_path(settings.state_dir)}")


def server_stop(home: ServerHome = None) -> None:
    """Stop the managed Prefect server (or the one driftline started under --home, e.g. the demo's)."""
    from driftline.runtime import server, warm
    from driftline.settings import get_settings

    where = (home or get_settings().prefect_home).resolve()
    stopped = server.stop(where)
    typer.echo(f"stopped the server of {where}" if stopped else f"no managed server was running in {where}")
    if home is None and warm.stop(get_settings().state_dir):
        typer.echo(f"stopped the warm worker of {get_settings().state_dir}")


def server_status(home: ServerHome = None) -> None:
    """Say whether the Prefect server driftline uses (PREFECT_API_URL, the managed one, or --home's) is answering."""
    from driftline.runtime import server
    from driftline.settings import get_settings

    if home is not None:
        info = server.running(home.resolve())
        answering = info is not None
        typer.echo(f"{info.api_url}: healthy (home {home})" if info else f"no server of {home} is answering")
    else:
        from driftline.runtime import warm

        api = os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{get_settings().prefect_port}/api"
        answering = server.healthy(api)
        typer.echo(f"{api}: {'healthy' if answering else 'not answering'}")
        worker = warm.running(get_settings().state_dir)
        typer.echo(f"warm worker: pid {worker}" if worker else "warm worker: none (commands run in their own process)")
    if not answering:
        raise typer.Exit(code=1)
