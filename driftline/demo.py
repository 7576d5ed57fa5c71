"""``make demo``: the whole loop on synthetic fraud data, against the managed local Prefect server.

Acts: (1) the first training promotes a champion; (2) a worse configuration is rejected by the gate;
(3) a corrupt batch is quarantined byte-identical and the champion stays. The demo keeps its state in
``.driftline/demo`` (made anew each run) so it tells the same story every time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from driftline.server import ServerInfo
from driftline.settings import get_settings

# A deliberately weak challenger: five shallow trees clear gate.min_metric but cannot match the champion.
WEAK_CHALLENGER = {"estimator.params": {"n_estimators": 5, "max_depth": 2, "learning_rate": 0.3}}


def _say(text: str) -> None:
    print(text, flush=True)


def run(info: ServerInfo, rows: int = 4000) -> None:
    settings = get_settings()
    home = (settings.project_dir / ".driftline" / "demo").resolve()
    shutil.rmtree(home, ignore_errors=True)
    os.environ["DRIFTLINE_HOME"] = str(home)
    landing = home / "data" / "fraud"

    from driftline.examples.fraud import generate

    _say(f"Prefect UI: {info.ui_url}   (API {info.api_url})")
    _say(f"demo state: {home}\n")
    landing.mkdir(parents=True)
    for seed in (1, 2, 3):
        generate(rows, seed, start=f"2026-01-0{seed}T00:00:00").to_parquet(landing / f"batch-{seed:04d}.parquet")
    _say(f"generated 3 clean batches of {rows} rows in {landing}")

    from driftline.registry import open_registry
    from flows.train import train

    glob = str(landing / "*.parquet")

    def act(title: str, **parameters: Any) -> Any:
        _say(f"\n== {title}")
        state = train(model="fraud", data=glob, return_state=True, **parameters)
        url = f"{info.ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
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
        _say(f"   run: {url}")
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

    corrupt = landing / "batch-0004.parquet"
    generate(rows, 4, corrupt=True, start="2026-01-04T00:00:00").to_parquet(corrupt)
    original = corrupt.read_bytes()
    third = act(
        "3. a corrupt batch lands (negative amounts, missing categories, unknown countries, hour 27)",
        reason="demo: corrupt",
    )
    if third.is_completed():
        raise SystemExit("demo: the corrupt batch should have failed validation")
    kept = next((home / "quarantine" / "fraud").glob("*/batch-0004.parquet"))
    identical = kept.read_bytes() == original
    _say(f"   quarantined: {kept} ({'byte-identical' if identical else 'DIFFERENT BYTES'})")
    _say(f"   evidence:    {kept.parent / 'validation.json'}")

    registry = open_registry()
    champion = registry.champion("fraud")
    assert champion is not None
    _say("\n== where things are")
    _say(f"   champion:        fraud:{champion.version} (unchanged by acts 2 and 3)")
    _say(f"   ledger:          {len(registry.ledger('fraud'))} promotion(s) in {registry.safe_url}")
    _say(f"   model store:     {Path(os.environ.get('BENTOML_HOME', home / 'bentoml'))}")
    _say(f"   profiles:        {home / 'profiles' / 'fraud'}")
    _say(f"   holdouts:        {home / 'holdouts' / 'fraud'}")
    _say(f"   quarantine:      {home / 'quarantine' / 'fraud'}")
    _say(f"   artifacts:       {info.ui_url}/artifacts (fraud-validation, fraud-metrics, fraud-gate, fraud-lineage)")
    _say(f"   try:             DRIFTLINE_HOME={home} uv run driftline status fraud")
    if not identical:
        raise SystemExit("demo: the quarantined batch is not byte-identical")
