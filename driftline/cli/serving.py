"""Commands that serve a model version over HTTP (serve) or package it as a Bento (build)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def serve(
    model: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str | None, typer.Option(help="a version (default: the champion)")] = None,
    port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1")] = 3000,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    start_timeout: Annotated[float, typer.Option(help="seconds to become ready before giving up")] = 120.0,
) -> None:
    """Serve MODEL's champion (or --version) over HTTP with BentoML, the training schema enforced on requests."""
    from driftline.runtime.processes import bentoml_command
    from driftline.serving.config import SERVICE, config_for, resolve_token, version_of
    from driftline.serving.supervisor import supervise
    from driftline.settings import get_settings, quiet_telemetry
    from driftline.spec import load_spec

    record = version_of(model, version)
    tag = record.tag
    config = config_for(load_spec(model), tag, follow=version is None, files=record.lineage.model_files)
    auth = resolve_token(config) is not None  # fail here, not in every worker, if the token is missing
    quiet_telemetry()
    os.environ.update(config.to_env())
    os.environ.setdefault("BENTOML_HOME", str(get_settings().bentoml_home))
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
    # Supervised: a model that cannot load stops the service at once, with the reason (exit 1), and frees the port.
    probe = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    supervise(
        [bentoml_command(), "serve", SERVICE, "--host", host, "--port", str(port)],
        os.environ,
        f"http://{probe}:{port}",
        what=tag,
        start_timeout=start_timeout,
        on_ready=lambda: typer.echo(f"ready: {tag} on http://{host}:{port}"),
    )


def build(
    model: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str | None, typer.Option(help="a version (default: the champion)")] = None,
) -> None:
    """Build a Bento for MODEL's champion (or --version): the service, the model and pinned requirements."""
    from driftline.loop import integrity, store
    from driftline.serving.bento import build as build_bento
    from driftline.serving.config import config_for, version_of
    from driftline.settings import get_settings
    from driftline.spec import load_spec

    record = version_of(model, version)
    tag = record.tag
    config = config_for(load_spec(model), tag, files=record.lineage.model_files)
    integrity.verify(tag, store.folder(tag), config.files)  # never package a model that is not the one recorded
    bento = build_bento(config, get_settings().project_dir)
    typer.echo(
        f"built Bento {bento} for {tag}\n  run it: bentoml serve {bento}\n  image:  bentoml containerize {bento}"
    )
