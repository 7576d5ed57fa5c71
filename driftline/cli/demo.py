"""``make demo``: the whole loop on synthetic fraud data, on a Prefect server of the demo's own.

Act one: the first training promotes a champion; a worse configuration is rejected by the gate; a corrupt batch
is quarantined byte-identical and the champion stays. Act two: the retrain and monitor deployments are served,
a clean batch lands (no drift, no retrain), a drifted batch lands, drift is detected, the drift event starts the
retrain deployment and the gate decides. Act three: the champion is served (requests checked against its schema,
traffic profiled in windows that the monitor scores), then rolled back, and the service follows.

The demo is a project of its own (id ``demo``) in ``.driftline/demo`` (the specs and suites copied, its own data and
state), made anew each run, so it tells the same story every time and never touches the project's own state. It
runs on a Prefect server of its own too (port 4300, or a free one if that is taken; home ``.driftline/demo/prefect``,
which a new run keeps), so its deployments and automations never live on the server the project uses. The server
keeps running after the demo for browsing; ``make demo-stop`` stops it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.oncall import events
from driftline.oncall.events import deployment_name
from driftline.runtime import server
from driftline.runtime.prefect_api import TERMINAL, deployment_id, flow_runs
from driftline.runtime.processes import spawn, stop
from driftline.runtime.server import ServerInfo
from driftline.settings import get_settings, quiet_telemetry

if TYPE_CHECKING:
    import subprocess

# A deliberately weak challenger: five shallow trees clear gate.min_metric but cannot match the champion.
WEAK_CHALLENGER = {"estimator.params": {"n_estimators": 5, "max_depth": 2, "learning_rate": 0.3}}

PROJECT = "demo"  # the demo's project id: its events, deployments and artifact keys say "demo"
PORT = 4300  # beside the project's managed server (4200); a free port if something else holds it
SERVER_HOME = "prefect"  # inside the demo folder, and kept when the rest of it is made anew


def folder(project_dir: Path) -> Path:
    """The demo's folder in a project: the demo project and, in ``prefect/``, its server's home."""
    return (project_dir / ".driftline" / "demo").resolve()


def server_home(project_dir: Path) -> Path:
    return folder(project_dir) / SERVER_HOME


def connect() -> ServerInfo:
    """Start (or reuse) the demo's own Prefect server and point this process and its children at it.

    A PREFECT_API_URL the user set is overridden on purpose: the demo's deployments and automations must not land
    on the server the user's project uses.
    """
    quiet_telemetry()
    info = server.start_own(server_home(get_settings().project_dir), PORT)
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ["PREFECT_UI_URL"] = info.ui_url
    return info


def _say(text: str) -> None:
    print(text, flush=True)


def _prepare(project: Path) -> Path:
    """Make the demo project anew (specs and suites copied, state beside them), keeping its server's home."""
    settings = get_settings()
    demo = folder(project)
    demo.mkdir(parents=True, exist_ok=True)
    # The server may still run from the last demo: its database must not be deleted from under it.
    for child in demo.iterdir():
        if child.name == SERVER_HOME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copytree(settings.specs_dir, demo / "deployments", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(settings.suites_dir, demo / "expectations")
    spec = demo / "deployments" / "fraud.toml"
    if "[monitor]" not in spec.read_text():  # the demo writes each batch whole before it runs the monitor
        with spec.open("a") as toml:
            toml.write("\n[monitor]\nsettle_seconds = 0\n")
    os.environ["DRIFTLINE_PROJECT_DIR"] = str(demo)
    os.environ["DRIFTLINE_PROJECT"] = PROJECT
    os.environ["DRIFTLINE_HOME"] = str(demo / ".driftline")
    os.environ["DRIFTLINE_PREFECT_SERVER_HOME"] = str(demo / SERVER_HOME)
    return demo


def run(info: ServerInfo, rows: int = 4000) -> None:
    """Play the demo's acts on ``info``'s server (see ``connect``); the server keeps running afterwards."""
    project_dir = get_settings().project_dir
    demo = _prepare(project_dir)
    # Flows called here, not by a deployment, carry the project's tag as deployment runs do.
    with events.run_tags(PROJECT):
        _acts(info, demo, rows)
    home = os.path.relpath(server_home(project_dir), Path.cwd())
    _say("\n== the demo's Prefect server keeps running, so you can browse the runs")
    _say(f"   Prefect UI:      {info.ui_url}   (its own server; home {home})")
    _say(f"   stop it:         make demo-stop   (or: uv run driftline server stop --home {home})")


def _acts(info: ServerInfo, demo: Path, rows: int) -> None:
    state_dir = demo / ".driftline"
    data = demo / "data" / "fraud"
    landing = data / "landing"

    from driftline.examples.fraud import generate

    _say(f"Prefect UI: {info.ui_url}   (API {info.api_url})")
    _say(f"demo project: {demo}\n")
    data.mkdir(parents=True)
    for seed in (1, 2, 3):
        generate(rows, seed, start=f"2026-01-0{seed}T00:00:00").to_parquet(data / f"batch-{seed:04d}.parquet")
    _say(f"generated 3 clean batches of {rows} rows in {data}")

    from driftline.registry import open_registry
    from flows.monitor import monitor
    from flows.train import train

    def link(state: Any) -> str:
        return f"{info.ui_url}/runs/flow-run/{state.state_details.flow_run_id}"

    def act(title: str, **parameters: Any) -> Any:
        _say(f"\n== {title}")
        state = train(model="fraud", return_state=True, **parameters)
        if state.is_completed():
            outcome = state.result()
            verdict = f"PROMOTED {outcome.tag}" if outcome.promoted else "REJECTED"
            _say(f"   gate {verdict}: {outcome.decision.reason}")
        else:
            first, *details = str(state.message).splitlines()
            _say(f"   run {state.name}: {first}")
            for line in details:
                if line.lstrip().startswith("- "):
                    _say(f"     {line.strip()}")
        _say(f"   run: {link(state)}")
        return state

    first = act("1. first training: no champion yet, the gate asks for roc_auc >= min_metric", reason="demo: first")
    if not (first.is_completed() and first.result().promoted):
        raise SystemExit("demo: the first training should have promoted a champion")

    second = act(
        "2. a worse configuration (5 trees of depth 2) challenges the champion on the same holdout",
        overrides=WEAK_CHALLENGER,
        reason="demo: weak",
    )
    if not second.is_completed() or second.result().promoted:
        raise SystemExit("demo: the weak challenger should have been rejected")

    corrupt = data / "batch-0004.parquet"
    generate(rows, 4, corrupt=True, start="2026-01-04T00:00:00").to_parquet(corrupt)
    original = corrupt.read_bytes()
    third = act(
        "3. a corrupt batch lands (negative amounts, missing categories, unknown countries, hour 27)",
        reason="demo: corrupt",
    )
    if third.is_completed():
        raise SystemExit("demo: the corrupt batch should have failed validation")
    kept = next((state_dir / "quarantine" / "fraud").glob("*/batch-0004.parquet"))
    if kept.read_bytes() != original:
        raise SystemExit(f"demo: the quarantined batch {kept} is not byte-identical")
    _say(f"   quarantined: {kept} (byte-identical)")
    _say(f"   evidence:    {kept.parent / 'validation.json'}")
    # A spec's source is the user's: driftline copied the bad batch and left it in place. Removing it is the user's
    # call; until then every run that reads the source fails on it, the retrain in act seven included.
    corrupt.unlink()
    _say(f"   {corrupt.name} was left in place (the user's file); the demo removes it, as its user would")

    registry = open_registry()
    champion = registry.champion("fraud")
    assert champion is not None

    name = deployment_name("fraud", PROJECT)
    _say(f"\n== 4. serving the deployments: retrain/{name} (nightly + drift trigger) and monitor/{name}")
    server = spawn(["fraud"], demo, state_dir / "serve-flows.log", poll_seconds=2)
    try:
        retrain_id = deployment_id(info.api_url, "retrain", "fraud")
        _say(f"   deployments registered; runner log: {state_dir / 'serve-flows.log'}")

        landing.mkdir(parents=True)
        generate(rows * 2, 5, start="2026-01-05T00:00:00").to_parquet(landing / "batch-0005.parquet")
        _say("\n== 5. a clean batch lands; the monitor scores it against the champion's reference profile")
        state = monitor(model="fraud", return_state=True)
        (clean,) = state.result()
        assert clean.decision is not None, f"demo: the clean batch was {clean.status}"
        _say(f"   {clean.decision.decision}: {clean.decision.reason}")
        _say(f"   report: {clean.report_path}\n   run: {link(state)}")

        # The deployment outlives earlier demos on the same server: wait for a run this demo caused.
        earlier = {r["id"] for r in flow_runs(info.api_url, retrain_id)}
        generate(rows * 2, 6, drift=True, start="2026-01-06T00:00:00").to_parquet(landing / "batch-0006.parquet")
        _say("\n== 6. a drifted batch lands (bigger amounts, more online spending, another country mix)")
        landed = time.monotonic()
        state = monitor(model="fraud", return_state=True)
        (drifted,) = state.result()
        assert drifted.decision is not None, f"demo: the drifted batch was {drifted.status}"
        _say(f"   drifted columns: {', '.join(drifted.drifted)}")
        _say(f"   {drifted.decision.decision}: {drifted.decision.reason}; event driftline.drift.detected emitted")
        _say(f"   report: {drifted.report_path}\n   run: {link(state)}")

        _say("\n== 7. the drift event starts the retrain deployment; the gate decides")
        run = _wait_for_run(info.api_url, retrain_id, earlier, timeout=300)
        elapsed = time.monotonic() - landed
        _say(f"   retrain run {run['name']} ({run['state_name']}) {elapsed:.0f} s after the drifted batch landed")
        _say(f"   parameters from the event: {run['parameters']}")
        _say(f"   run: {info.ui_url}/runs/flow-run/{run['id']}")
        for decision in reversed(registry.decisions("fraud", limit=3)):
            if decision.flow_run_id == run["id"]:
                _say(f"   {decision.decision}: {decision.reason}")
    finally:
        stop(server)

    _serve_and_roll_back(demo, state_dir, rows)

    champion = registry.champion("fraud")
    assert champion is not None
    _say("\n== where things are")
    _say(f"   champion:        fraud:{champion.version}")
    _say(f"   ledger:          {len(registry.ledger('fraud'))} entries (promotions, rollbacks) in {registry.safe_url}")
    _say(f"   model store:     {os.environ.get('BENTOML_HOME', state_dir / 'bentoml')}")
    _say(f"   profiles:        {state_dir / 'profiles' / 'fraud'}")
    _say(f"   drift reports:   {state_dir / 'reports' / 'fraud'}")
    _say(f"   quarantine:      {state_dir / 'quarantine' / 'fraud'}")
    _say(f"   artifacts:       {info.ui_url}/artifacts ({PROJECT}-fraud-validation, -metrics, -gate, -lineage, -drift)")
    _say(f"   try:             DRIFTLINE_PROJECT_DIR={demo} uv run driftline status fraud")


def _serve_and_roll_back(demo: Path, state_dir: Path, rows: int) -> None:
    """Acts 8 and 9: serve the champion, profile its traffic for the monitor; roll back, and the service follows."""
    import sys

    from driftline.runtime.processes import launched
    from driftline.runtime.server import free_port
    from driftline.spec import load_spec

    spec_path = demo / "deployments" / "fraud.toml"
    spec_path.write_text(spec_path.read_text() + "\n[serving]\nwindow_minutes = 0.1  # 6-second traffic windows\n")
    features = load_spec("fraud").features.columns
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    _say(f"\n== 8. the champion is served ({url}): requests checked, traffic profiled in 6-second windows")
    log_path = state_dir / "serve.log"
    command = [sys.executable, "-m", "driftline.cli", "serve", "fraud", "--port", str(port)]
    with launched(command, log_path) as process:
        _serve_acts(url, process, log_path, features, rows)


def _serve_acts(url: str, process: subprocess.Popen[bytes], log_path: Path, features: list[str], rows: int) -> None:
    """Acts 8 and 9 against the service at ``url`` (``process``, logging to ``log_path``)."""
    import httpx

    from driftline.examples.fraud import generate
    from driftline.loop.statuses import BatchStatus
    from driftline.oncall.rollback import rollback
    from driftline.registry import open_registry
    from driftline.serving.requests import describe_errors
    from flows.monitor import monitor

    def health() -> dict[str, Any]:
        return dict(httpx.get(f"{url}/health", timeout=5).json())

    def wait(check: Any, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass  # starting or restarting
            if process.poll() is not None:
                raise SystemExit(f"demo: the service exited; see {log_path}")
            time.sleep(0.5)
        raise SystemExit(f"demo: {what} within {timeout:.0f} s; see {log_path}")

    wait(lambda: health()["model"], "the service was not ready")
    served = health()["model"]
    records = generate(rows // 2, 8, start="2026-01-08T00:00:00")[features].to_dict(orient="records")
    answer = httpx.post(f"{url}/predict", json={"rows": records}, timeout=60).json()
    _say(f"   {served}: {len(answer['predictions'])} rows predicted; first: {answer['probabilities'][0]}")
    bad = httpx.post(f"{url}/predict_one", json={"row": {**records[0], "country": "XX", "amount": "12"}}, timeout=10)
    _say(f"   a bad row: {bad.status_code}, " + describe_errors(bad.json()["detail"]).replace("\n", "; "))
    wait(lambda: health()["profiling"]["windows_written"] >= 1, "no traffic window was written", timeout=30)
    _say(f"   traffic window profile: {health()['profiling']['last_written']}")
    time.sleep(7)  # the monitor takes a window once its grace period (its length) has passed
    for outcome in monitor(model="fraud"):
        if outcome.status == BatchStatus.WINDOW:
            decision = outcome.decision.decision if outcome.decision else "-"
            _say(f"   monitor: {outcome.origin}: drifted columns: {', '.join(outcome.drifted) or 'none'}; {decision}")

    registry = open_registry()
    _say("\n== 9. on call: `driftline rollback fraud` puts the previous champion back; the service follows")
    done = rollback("fraud", None, actor="demo", reason="demo: rollback")
    if done.not_notified:
        raise SystemExit(f"demo: the rollback was not notified: {done.not_notified}")
    entry = done.entry
    moved = time.monotonic()
    restored = registry.version("fraud", entry.to_version).tag
    wait(lambda: health()["model"] == restored, "the service did not follow the rollback", timeout=90)
    _say(f"   champion {entry.from_version} -> {entry.to_version} (ledger entry {entry.id}, by demo)")
    _say(f"   the service serves {restored} {time.monotonic() - moved:.0f} s later")
    _say("   with [notify] blocks in the spec, `driftline deploy` pages on-call for this and every alert")


def _wait_for_run(api: str, deployment_id: str, earlier: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = flow_runs(api, deployment_id)
        done = [r for r in runs if r["id"] not in earlier and r["state_type"] in TERMINAL]
        if done:
            return dict(done[0])
        time.sleep(1)
    raise SystemExit(f"demo: no retrain run finished within {timeout:.0f} s")
