"""The BentoML service over real HTTP (`driftline serve` → `bentoml serve` on a free loopback port)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.loop import store
from driftline.monitoring.traffic import stamp, window_start
from driftline.runtime.processes import stop_group
from driftline.runtime.server import free_port
from driftline.serving.requests import describe_errors
from tests.conftest import Project, new_project

pytestmark = pytest.mark.integration


@dataclass
class Served:
    url: str
    tag: str
    rows: pd.DataFrame
    project: Project


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.drop(columns=["event_time"]).to_dict(orient="records")
    ]


WINDOW_SECONDS = 4.0
WEAK_CHAMPION = {"estimator.params": {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.3}}
TOKEN = "test-token-0123"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Iterator[Served]:
    """One trained project and one `driftline serve` process for the module's tests (starting one costs ~20 s)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _serve(new_project(tmp_path_factory.mktemp("served"), monkeypatch))


def _serve(project: Project) -> Iterator[Served]:
    from flows.train import train

    spec = project.root / "deployments" / "fraud.toml"
    # Short traffic windows so a test sees one close; auth on, its token in the environment, never in the spec.
    spec.write_text(
        spec.read_text() + f'\n[serving]\nwindow_minutes = {WINDOW_SECONDS / 60}\ntoken_env = "FRAUD_SERVE_TOKEN"\n'
    )
    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))
    # A deliberately weak champion (two stumps), so a later default train is significantly better and replaces it.
    outcome = train(model="fraud", overrides={**WEAK_CHAMPION, "gate.min_metric": 0.5})
    assert outcome.tag is not None
    port = free_port()
    log = (project.root / "bentoml.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "serve", "fraud", "--port", str(port)],
        cwd=project.root,
        env={**os.environ, "FRAUD_SERVE_TOKEN": TOKEN},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (project.root / "bentoml.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("bentoml serve did not become ready in 120 s")
        yield Served(url, outcome.tag, generate(50, 99), project)
    finally:
        stop_group(process)
        log.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _post(served: Served, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{served.url}{path}", json=body, headers=AUTH, timeout=60, **kwargs)


def test_predictions_match_the_model_in_process(served: Served) -> None:
    rows = _records(served.rows)
    response = _post(served, "/predict", {"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    model = store.load(served.tag, store.digests(served.tag))
    features = served.rows.drop(columns=["event_time", "transaction_id", "is_fraud"])
    assert body["model"] == served.tag
    assert body["predictions"] == model.predict(features).tolist()
    assert np.allclose(body["probabilities"], model.predict_proba(features), atol=1e-5)
    one = _post(served, "/predict_one", {"row": rows[0]})
    assert one.status_code == 200, one.text
    assert one.json()["prediction"] == body["predictions"][0]
    assert _post(served, "/model", {}).json()["model"] == served.tag
    health = httpx.get(f"{served.url}/health", timeout=10).json()  # open: probes carry no token
    assert health["model"] == served.tag and health["auth"] is True
    assert health["profiling"]["window_seconds"] == WINDOW_SECONDS
    assert health["fast_path"] == "on"  # the answers above came through the numpy fast path


def test_concurrent_single_rows_are_batched_and_each_gets_its_own_answer(served: Served) -> None:
    import asyncio

    rows = _records(served.rows)
    features = served.rows.drop(columns=["event_time", "transaction_id", "is_fraud"])
    expected = store.load(served.tag, store.digests(served.tag)).predict_proba(features)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as client:
            return await asyncio.gather(*(client.post("/predict_one", json={"row": row}) for row in rows))

    answers = asyncio.run(burst())
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:3]
    served_positive = [a.json()["probabilities"]["1"] for a in answers]
    assert np.allclose(served_positive, expected[:, 1], atol=1e-5)  # row i's answer is row i's, not a neighbour's


def test_the_prediction_endpoints_require_the_token(served: Served) -> None:
    row = _records(served.rows)[0]
    missing = httpx.post(f"{served.url}/predict_one", json={"row": row}, timeout=30)
    assert missing.status_code == 401 and "missing bearer token" in missing.text
    wrong = httpx.post(
        f"{served.url}/predict", json={"rows": [row]}, headers={"Authorization": "Bearer nope"}, timeout=30
    )
    assert wrong.status_code == 401 and "wrong bearer token" in wrong.text
    assert httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200


BAD_ROWS: list[tuple[Any, str]] = [
    (lambda row: row.pop("amount"), "rows[0].amount: Field required"),
    (lambda row: row.__setitem__("amount", "12.5"), "rows[0].amount: Input should be a valid number"),
    (lambda row: row.__setitem__("country", "XX"), "rows[0].country: Input should be 'BR', 'DE'"),
    (lambda row: row.__setitem__("hour", None), "rows[0].hour: Input should be a valid number"),
]


def test_bad_requests_are_400s_naming_the_field_and_the_process_stays_up(served: Served) -> None:
    for change, message in BAD_ROWS:
        row = _records(served.rows)[0]
        change(row)
        response = _post(served, "/predict", {"rows": [row]})
        assert response.status_code == 400, response.text
        assert message in describe_errors(response.json()["detail"])

    row = _records(served.rows)[0]
    raw = httpx.post(
        f"{served.url}/predict",
        content=json.dumps({"rows": [{**row, "amount": math.nan}]}),  # json.dumps writes NaN, as some clients do
        headers={"content-type": "application/json", **AUTH},
        timeout=30,
    )
    assert raw.status_code == 400, raw.text
    assert "rows[0].amount: Input should be a finite number" in describe_errors(raw.json()["detail"])
    big = _post(served, "/predict", {"rows": [row] * 10_001})
    assert big.status_code == 400
    assert "rows: List should have at most 10000 items" in describe_errors(big.json()["detail"])

    assert httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200
    good = _post(served, "/predict", {"rows": [row]})
    assert good.status_code == 200, good.text


def test_served_traffic_is_profiled_in_windows_and_the_monitor_scores_them(served: Served) -> None:
    from driftline.registry import open_registry
    from flows.monitor import monitor

    drifted = _records(generate(3000, 7, drift=True))
    served_at = time.time()
    assert _post(served, "/predict", {"rows": drifted}).status_code == 200  # one request: one window
    answered_at = time.time()  # on a busy machine the rows may be profiled in the window after the one sent in
    version = served.tag.split(":", 1)[1]
    traffic = served.project.state / "profiles" / "fraud" / "traffic" / version
    # The window our rows were profiled in: the one sent in or, on a busy machine, the next. The other may hold only
    # the earlier tests' clean rows, which must not be mistaken for ours.
    windows = [stamp(window_start(t, WINDOW_SECONDS)) for t in (served_at, answered_at, answered_at + WINDOW_SECONDS)]
    windows = list(dict.fromkeys(windows))
    deadline = time.monotonic() + 3 * WINDOW_SECONDS + 10
    while not [w for w in windows if _profiled_rows(traffic / w) >= 3000] and time.monotonic() < deadline:
        time.sleep(0.5)
    written = [w for w in windows if _profiled_rows(traffic / w) >= 3000]
    assert written, httpx.get(f"{served.url}/health", timeout=10).json()
    window = written[0]
    time.sleep(WINDOW_SECONDS + 1)  # the monitor waits out a grace period after a window ends

    outcomes = {o.fingerprint: o for o in monitor(model="fraud") if o.status == "window"}
    key = f"window:{version}:{window}"
    assert key in outcomes, f"the monitor did not score {key} (scored: {sorted(outcomes)})"
    assert "amount" in outcomes[key].drifted
    record = open_registry().batch("fraud", key)
    assert record is not None and record.status == "window"
    assert record.rows is not None and record.rows >= 3000  # all of ours (and any other test's in the same window)
    assert record.profile_path and record.report_path
    assert key not in {o.fingerprint for o in monitor(model="fraud")}  # scored once


def _profiled_rows(window: Path) -> int:
    """Rows in a traffic window's profiles so far (0 while none is written whole)."""
    from driftline.loop.profiles import read_profile, view_rows

    rows = 0
    for part in window.glob("*.bin"):
        try:
            rows += view_rows(read_profile(str(part)))
        except Exception:  # a part still being written: counted once it is whole
            return 0
    return rows


def test_servability_check_blocks_a_broken_package_and_the_champion_stays(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.registry import open_registry
    from flows.train import train
    from tests.flows.test_train import _events

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))
    # A weak champion (two stumps, still above the minimum it is given), so the default model is clearly better:
    # the second run reaches its servability check instead of ending `unchanged` or `not_better`.
    weak = {"estimator.params": {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.3}, "gate.min_metric": 0.5}
    first = train(model="fraud", overrides=weak)
    assert first.promoted
    assert first.decision.windows["servability"]["p95_ms"] > 0

    # A package whose schema no longer matches the data: it knows only one country.
    real_save = store.save

    def broken_save(*args: Any, **kwargs: Any) -> str:
        schema = kwargs["schema"]
        for column in schema["columns"]:
            if column["name"] == "country":
                column["categories"] = ["US"]
        return real_save(*args, **kwargs)

    monkeypatch.setattr(store, "save", broken_save)
    state = train(model="fraud", return_state=True)
    assert state.is_completed(), state.message
    second = state.result()
    assert not second.promoted and second.outcome == "unservable" and second.decision.pages
    assert second.decision.challenger > second.decision.champion + 0.02  # the gate alone would have promoted it
    assert second.decision.reason.startswith("servability check failed: the service refused holdout rows (400)")
    assert "].country: Input should be 'US'" in second.decision.reason
    registry = open_registry()
    assert registry.champion("fraud").version == first.version  # type: ignore[union-attr]
    assert len(registry.ledger("fraud")) == 1
    (recorded,) = registry.gate_decisions("fraud", limit=1)
    assert recorded.reason == second.decision.reason and recorded.evidence["outcome"] == "unservable"
    (rejected,) = _events(prefect_server, state.state_details.flow_run_id, expected=1)
    assert rejected["event"] == "driftline.model.rejected"
    assert rejected["payload"]["outcome"] == "unservable" and rejected["payload"]["tag"] == second.tag
    alert = rejected["payload"]["alert"]
    assert alert["title"] == f"packaged version failed the servability check; champion {first.version} stays"
    assert alert["subject_key"] == "unservable"


def test_a_following_service_serves_the_new_champion_and_the_rolled_back_one(
    served: Served, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from driftline.cli import app
    from driftline.registry import open_registry
    from flows.train import train

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)

    def serving(tag: str) -> bool:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{served.url}/health", timeout=2).json()["model"] == tag:
                    return True
            except (httpx.HTTPError, ValueError):
                pass  # the worker is restarting
            time.sleep(0.5)
        return False

    better = train(model="fraud")
    assert better.promoted and better.tag
    assert serving(better.tag), "the service did not move to the new champion"
    row = _records(served.rows)[0]
    assert _post(served, "/predict_one", {"row": row}).json()["model"] == better.tag

    result = CliRunner().invoke(app, ["rollback", "fraud", "--reason", "test"])
    assert result.exit_code == 0, result.output
    assert serving(served.tag), "the service did not move back after the rollback"
    assert _post(served, "/predict_one", {"row": row}).json()["model"] == served.tag
    status = CliRunner().invoke(app, ["status", "fraud"])
    assert f"champion {served.tag.split(':')[1]}" in status.output
    moves = [(e.action, e.to_version) for e in open_registry().ledger("fraud")]
    assert moves[-2:] == [("promote", better.version), ("rollback", served.tag.split(":")[1])]
