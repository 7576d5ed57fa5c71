"""On-call commands: deploy the automations that page, roll a champion back, replay a quarantined batch."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from driftline.cli.base import connect
from driftline.errors import DriftlineError


def deploy(
    models: Annotated[list[str] | None, typer.Argument(help="models (default: every spec)")] = None,
) -> None:
    """Create or replace each model's on-call automations on the Prefect server, from its [notify] section."""
    from driftline.oncall.automations import deploy as deploy_automations
    from driftline.spec import list_models, load_spec

    info = connect()
    for name in models or list_models():
        spec = load_spec(name)
        deployed = deploy_automations(spec)
        zombies = [a for a in deployed if a.name.endswith("/zombies")]
        notifying = [a for a in deployed if a not in zombies]
        if not notifying:
            typer.echo(f"{name}: notify.blocks is empty in {spec.label}: no notifications (its automations removed)")
        else:
            typer.echo(f"{name}: {len(notifying)} automations sending through {', '.join(spec.notify.blocks)}")
        for automation in deployed:
            typer.echo(f"  {automation.name:<40} on {automation.trigger}")
    typer.echo(f"  see them: {info.ui_url}/automations")


def rollback(
    model: Annotated[str, typer.Argument(help="model name")],
    to: Annotated[str | None, typer.Option(help="version to restore (default: the one the champion replaced)")] = None,
    reason: Annotated[str | None, typer.Option(help="why, for the ledger (required with --force)")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="roll back to a version that has not passed every check (recorded)")
    ] = False,
) -> None:
    """Make the last known good version (or --to) MODEL's champion again; recorded in the ledger, notified.

    Only a version that passed every check (gate, file digests, servability) can be champion; --force overrides
    that, and needs --reason: the ledger records it as ``forced-rollback`` with the reason and the skipped checks.
    """
    import getpass

    from driftline.oncall.rollback import rollback as roll_back

    actor = os.environ.get("DRIFTLINE_ACTOR") or getpass.getuser()
    if force and not (reason or "").strip():
        raise DriftlineError(f'{model}: rollback --force needs --reason "why" (it is recorded in the ledger)')
    unreachable = None
    try:
        connect()  # the notification needs a Prefect API; without one the rollback still happens
    except DriftlineError as error:
        unreachable = str(error)
    done = roll_back(model, to, actor, reason or "manual rollback", notify=unreachable is None, force=force)
    entry = done.entry
    typer.echo(f"{model}: champion is {entry.to_version} again (was {entry.from_version}); ledger entry {entry.id}")
    if force:
        typer.echo(f"  forced: recorded as {entry.action} with reason {entry.reason!r}", err=True)
    if unreachable or done.not_notified:
        typer.echo(f"  (not notified: {unreachable or done.not_notified})", err=True)
    typer.echo(f"  a service started with `driftline serve {model}` (no --version) follows the champion")


def verify(
    model: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str | None, typer.Option(help="a version (default: the champion)")] = None,
) -> None:
    """Check a version's stored files against the digests recorded when it was packaged (nothing is loaded)."""
    from driftline.loop import integrity, store
    from driftline.serving.config import version_of

    record = version_of(model, version)
    files = record.lineage.model_files
    if not files:
        raise DriftlineError(
            f"{record.tag}: no file digests recorded (packaged before driftline recorded them); it is not loaded "
            f"until they are: `driftline trust {record.tag} --reason ...` after checking the store, or retrain"
        )
    folder = store.folder(record.tag)
    problems = integrity.differences(files, integrity.folder_digests(folder))
    if problems:
        typer.echo(f"{record.tag}: {len(problems)} file(s) differ from the packaged ones in {folder}:", err=True)
        for problem in problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"{record.tag}: all {len(files)} files match the digests recorded when it was packaged")


def trust(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION packaged before driftline recorded file digests")],
    reason: Annotated[str, typer.Option(help="why you trust the stored files now (recorded)")],
) -> None:
    """Record file digests for a version packaged before driftline recorded them, after checking the model store."""
    import getpass

    from driftline.oncall.trust import trust as record_trust

    model, _, version = ref.partition(":")
    if not version:
        raise DriftlineError(f"{ref}: expected MODEL:VERSION")
    actor = os.environ.get("DRIFTLINE_ACTOR") or getpass.getuser()
    done = record_trust(model, version, actor, reason)
    typer.echo(f"{done.tag}: sha256 of {done.files} files recorded; every load now checks them")
    typer.echo("  it is still not promotable until it passes the servability check (or use rollback --force)")


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

    done = replay_batch(load_spec(model), batch)
    if not done.passes:
        typer.echo(
            f"{model}: {done.folder.name} still fails; it stays in quarantine\n{done.report.summary()}", err=True
        )
        raise typer.Exit(code=1)
    typer.echo(f"{model}: {done.folder.name} passes {done.report.suite} now; {done.describe()}")
    if done.released:
        typer.echo("  registry: its quarantined claim is released, so it is scored, not filed as a duplicate")
    typer.echo(f"  {done.next_step(model)}")
