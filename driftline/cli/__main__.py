"""``python -m driftline.cli``: the same CLI as the ``driftline`` command."""

from driftline.cli import app

app()
