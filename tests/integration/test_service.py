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
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftline import store
from driftline.examples.fraud import generate
from driftline.processes import stop_group
from driftline.server import free_port
from tests.conftest import Project

pytestmark = pytest.mark.integration


@dataclass
class Served:
    url: str
    tag: str
    rows: pd.DataFrame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.drop(columns=["event_time"]).to_dict(orient="records")
    ]


@pytest.fixture
def served(project: Project, prefect_server: str) -> Iterator[Served]:
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))
    outcome = train(model="fraud")
    assert outcome.tag is not None
    port = free_port()
    log = (project.root / "bentoml.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "serve", "fraud", "--port", str(port)],
        cwd=project.root,
        env=dict(os.environ),
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
        yield Served(url, outcome.tag, generate(50, 99))
    finally:
        stop_group(process)
        log.close()


def test_predictions_match_the_model_in_process(served: Served) -> None:
    rows = _records(served.rows)
    response = httpx.post(f"{served.url}/predict", json={"rows": rows}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    model = store.load(served.tag)
    features = served.rows.drop(columns=["event_time", "transaction_id", "is_fraud"])
    assert body["model"] == served.tag
    assert body["predictions"] == model.predict(features).tolist()
    assert np.allclose(body["probabilities"], model.predict_proba(features), atol=1e-5)
    one = httpx.post(f"{served.url}/predict_one", json={"row": rows[0]}, timeout=30)
    assert one.status_code == 200, one.text
    assert one.json()["prediction"] == body["predictions"][0]
    assert httpx.post(f"{served.url}/model", json={}, timeout=10).json()["model"] == served.tag


BAD_ROWS: list[tuple[Any, str, str]] = [
    (lambda row: row.pop("amount"), "rows[0].amount", "required field is missing"),
    (lambda row: row.__setitem__("amount", "12.5"), "rows[0].amount", "must be a number"),
    (lambda row: row.__setitem__("country", "XX"), "rows[0].country", "unknown category 'XX'"),
    (lambda row: row.__setitem__("hour", None), "rows[0].hour", "must not be null or NaN"),
]


def test_bad_requests_are_400s_naming_the_field_and_the_process_stays_up(served: Served) -> None:
    for change, field, rule in BAD_ROWS:
        row = _records(served.rows)[0]
        change(row)
        response = httpx.post(f"{served.url}/predict", json={"rows": [row]}, timeout=30)
        assert response.status_code == 400, response.text
        assert field in response.text and rule in response.text

    row = _records(served.rows)[0]
    raw = httpx.post(
        f"{served.url}/predict",
        content=json.dumps({"rows": [{**row, "amount": math.nan}]}),  # json.dumps writes NaN, as some clients do
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= raw.status_code < 500, raw.text
    assert "amount" in raw.text
    big = httpx.post(f"{served.url}/predict", json={"rows": [row] * 10_001}, timeout=60)
    assert big.status_code == 400 and "at most 10000 rows per request" in big.text

    assert httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200
    good = httpx.post(f"{served.url}/predict", json={"rows": [row]}, timeout=30)
    assert good.status_code == 200, good.text


def test_servability_check_blocks_a_broken_package_and_the_champion_stays(
    project: Project, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.registry import open_registry
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(2000, seed))
    first = train(model="fraud")
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
    second = train(model="fraud", overrides={"gate.min_improvement": 0.0, "gate.min_metric": 0.5})
    assert not second.promoted
    assert second.decision.reason.startswith("servability check failed: the service refused holdout rows (400)")
    assert "rows[" in second.decision.reason and ".country: unknown category" in second.decision.reason
    registry = open_registry()
    assert registry.champion("fraud").version == first.version  # type: ignore[union-attr]
    assert len(registry.ledger("fraud")) == 1
    assert registry.gate_decisions("fraud", limit=1)[0].reason == second.decision.reason
