"""What the commands share: the app and its one error path, ``--json`` output, the Prefect API and a run's link."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from typer._click.core import Context  # typer 0.29 carries its own click; its groups take this Context

    from driftline.runtime.server import ServerInfo


class DriftlineGroup(TyperGroup):
    """The command group with driftline's one error path, as click's ``ClickException`` has its own.

    A DriftlineError from any command, or from a ``server`` subcommand, is a red ``error:`` line on stderr and
    exit code 1, never a traceback.
    """

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except DriftlineError as error:
            from rich.console import Console

            Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None


class DriftlineTyper(typer.Typer):
    """The app: run as the console script, a command the warm worker can run is handed to it when one is up.

    ``driftline.runtime.warm.forward`` returns None when there is no worker (or it declines), and the command runs
    here as it always did. Called with arguments (tests, the worker's own child), it runs here.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            from driftline.runtime import warm

            code = warm.forward(sys.argv[1:])
            if code is not None:
                sys.exit(code)
        return super().__call__(*args, **kwargs)


app = DriftlineTyper(
    name="driftline",
    cls=DriftlineGroup,
    help="Workflow-as-code MLOps on Prefect 3: validate, profile, train, gate, package and promote models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: typer's rich help imports rich's markdown and syntax modules (~0.2 s of a 0.3 s budget)
    rich_markup_mode=None,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON (stable keys, see README) instead of tables")]


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def connect() -> ServerInfo:
    """Make sure a Prefect API is reachable and exported as PREFECT_API_URL before Prefect is imported."""
    from driftline.runtime.server import connect as connect_server

    return connect_server()


def completed_run_url(model: str, state: Any, info: ServerInfo) -> str:
    """The run's UI link; exit 1 with the run's own message if it did not complete."""
    run_url = f"{info.ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
    if not state.is_completed():
        typer.echo(f"{model}: run {state.name}: {state.message}\n  run: {run_url}", err=True)
        raise typer.Exit(code=1)
    return run_url
