"""A command run in the warm worker's child (``driftline.runtime.warm``): the CLI on the caller's argv.

The worker is started by ``driftline server start --warm`` with ``driftline.cli.worker:run`` as the runner it
imports in each forked child, after the fork, so the CLI and everything it imports is fresh from disk.
"""

from __future__ import annotations

import sys

RUNNER = "driftline.cli.worker:run"


def run(argv: list[str]) -> int:
    """Run ``driftline <argv>`` here and return its exit code, as the console script would exit."""
    from driftline.cli import app

    try:
        app(argv, prog_name="driftline")
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
