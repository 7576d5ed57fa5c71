"""The ``driftline`` command line: this table of its commands, one module per area beside it.

The only driftline code that imports ``flows`` (inside the commands that run them). Imports of anything heavy stay
inside the commands too, so ``driftline --help`` starts fast. A DriftlineError from any command is reported once,
by ``driftline.cli.base.DriftlineGroup``.
"""

from __future__ import annotations

from driftline.cli import drift, oncall, runs, server, serving, views
from driftline.cli.base import app

__all__ = ["app"]

# In the order ``driftline --help`` lists them.
app.command()(runs.train)
app.command()(views.status)
app.command()(views.ledger)
app.command()(views.lineage)
app.command()(views.check)
app.command()(views.models)
app.command("serve-flows")(runs.serve_flows)
app.command()(runs.monitor)
app.command()(drift.drift)
app.command()(drift.backtest)
app.command()(runs.retrain)
app.command()(views.evaluate)
app.command()(serving.serve)
app.command()(serving.build)
app.command()(oncall.deploy)
app.command()(oncall.rollback)
app.command()(oncall.replay)
app.command()(runs.demo)

server.server_app.command("start")(server.server_start)
server.server_app.command("stop")(server.server_stop)
server.server_app.command("status")(server.server_status)
app.add_typer(server.server_app, name="server")

if __name__ == "__main__":
    app()
