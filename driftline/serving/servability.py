"""The servability check: serve a packaged version for real and compare it with the model in process.

Before a version is promoted it is started with ``bentoml serve`` on a free loopback port; holdout rows are sent
over HTTP and the answers must equal the in-process model's within a tolerance, and single-row latency must stay
within the spec's budget. A package that cannot load, rejects rows it was trained on, or answers differently is
never promoted.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from driftline.runtime.processes import bentoml_command, launched
from driftline.runtime.server import free_port
from driftline.serving.config import SERVICE, ServeConfig, files_of
from driftline.serving.requests import describe_errors
from driftline.serving.supervisor import FAILURE_ENV
from driftline.settings import pause_at
from driftline.spec import ModelSpec


@dataclass(frozen=True)
class ServabilityReport:
    """Whether the packaged service answered like the model in process, and how fast."""

    ok: bool
    reason: str
    rows: int
    p50_ms: float | None = None
    p95_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            value = value.item() if isinstance(value, np.generic) else value
            clean[str(key)] = None if isinstance(value, float) and math.isnan(value) else value
        records.append(clean)
    return records


def check(tag: str, model: Any, rows: pd.DataFrame, spec: ModelSpec, log_dir: Path) -> ServabilityReport:
    """Serve ``tag``, send ``rows`` (feature columns), compare with ``model``; never raises on a bad package."""
    features = rows[spec.features.columns].head(spec.serving.check_rows).reset_index(drop=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"servability-{tag.replace(':', '-')}.log"
    # Profiling off: holdout rows are not live traffic. Auth off: the check talks to its own loopback process.
    # A model that cannot load is reported in the failure file (see driftline.serving.supervisor): no waiting.
    failure = log_dir / f"servability-{tag.replace(':', '-')}.failure"
    failure.unlink(missing_ok=True)
    env = {**os.environ, **ServeConfig(tag=tag, files=files_of(tag)).to_env(), FAILURE_ENV: str(failure)}
    command = [bentoml_command(), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]
    with launched(command, log_path, env=env) as process:
        return _probe(url, process, model, features, spec, log_path, failure)


def _probe(
    url: str,
    process: subprocess.Popen[bytes],
    model: Any,
    features: pd.DataFrame,
    spec: ModelSpec,
    log_path: Path,
    failure: Path,
) -> ServabilityReport:
    rows = len(features)
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=30) as client:
        while True:
            reason = failure.read_text().strip() if failure.exists() else ""
            if reason:
                return ServabilityReport(False, f"the service cannot start: {reason}; see {log_path}", rows)
            if process.poll() is not None:
                return ServabilityReport(
                    False, f"the service exited with code {process.returncode}; see {log_path}", rows
                )
            try:
                if client.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                return ServabilityReport(False, f"the service was not ready within 120 s; see {log_path}", rows)
            time.sleep(0.3)
        pause_at("train.servability")  # kill tests: the service is up, its port held

        records = _records(features)
        response = client.post(f"{url}/predict", json={"rows": records})
        if response.status_code != 200:
            return ServabilityReport(False, f"the service refused holdout rows {_refusal(response)}", rows)
        body = response.json()
        expected = model.predict(features)
        served = np.asarray(body["predictions"], dtype=object)
        if spec.task == "classification":
            mismatched = int(sum(str(a) != str(b) for a, b in zip(served, expected, strict=True)))
            gap = float(np.max(np.abs(np.asarray(body["probabilities"]) - model.predict_proba(features))))
        else:
            gap = float(np.max(np.abs(served.astype(float) - np.asarray(expected, dtype=float))))
            mismatched = 0
        if mismatched or gap > max(spec.serving.tolerance, 1e-6):
            return ServabilityReport(
                False,
                f"the service's answers differ from the model's: {mismatched} of {rows} predictions, "
                f"largest gap {gap:.2e} (serving.tolerance {spec.serving.tolerance:g})",
                rows,
            )

        latencies = []
        for record in records[:50]:
            start = time.perf_counter()
            client.post(f"{url}/predict_one", json={"row": record})
            latencies.append((time.perf_counter() - start) * 1000)
    p50 = statistics.median(latencies)
    p95 = sorted(latencies)[max(0, math.ceil(0.95 * len(latencies)) - 1)]
    if p95 > spec.serving.latency_budget_ms:
        return ServabilityReport(
            False,
            f"single-row p95 latency {p95:.1f} ms exceeds serving.latency_budget_ms {spec.serving.latency_budget_ms:g}",
            rows,
            p50,
            p95,
        )
    return ServabilityReport(
        True, f"{rows} holdout rows answered identically; single-row p50 {p50:.1f} ms, p95 {p95:.1f} ms", rows, p50, p95
    )


def _refusal(response: httpx.Response) -> str:
    """``(400): rows[0].country: Input should be 'US'`` from the service's validation error, or the raw body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        return f"({response.status_code}): {describe_errors(detail, limit=5)}"
    return f"({response.status_code}): {response.text[:500]}"
