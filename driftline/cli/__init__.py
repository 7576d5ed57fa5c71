"""The ``driftline`` command line: this table of its commands, one module per area beside it.

The only driftline code that imports ``flows`` (inside the commands that run them). Imports of anything heavy stay
inside the commands too, so ``driftline --help`` starts fast. A DriftlineError from any command is reported once,
by ``driftline.cli.base.DriftlineGroup``.
"""

from __future__ import annotations

from driftline.cli import drift, oncall, runs, server, serving, views
from driftline.cli.base import app

__all__ = ["app"]

# (name, function), in the order ``driftline --help`` lists them.
COMMANDS = (
    ("train", runs.train),
    ("status", views.status),
    ("ledger", views.ledger),
    ("lineage", views.lineage),
    ("check", views.check),
    ("models", views.models),
    ("serve-flows", runs.serve_flows),
    ("monitor", runs.monitor),
    ("drift", drift.drift),
    ("backtest", drift.backtest),
    ("retrain", runs.retrain),
    ("evaluate", views.evaluate),
    ("serve", serving.serve),
    ("build", serving.build),
    ("deploy", oncall.deploy),
    ("rollback", oncall.rollback),
    ("verify", oncall.verify),
    ("trust", oncall.trust),
    ("replay", oncall.replay),
    ("demo", runs.demo),
)
SERVER_COMMANDS = (("start", server.server_start), ("stop", server.server_stop), ("status", server.server_status))

for name, command in COMMANDS:
    app.command(name)(command)
for name, command in SERVER_COMMANDS:
    server.server_app.command(name)(command)
app.add_typer(server.server_app, name="server")

if __name__ == "__main__":
    app()
