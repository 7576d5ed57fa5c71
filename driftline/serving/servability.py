"""The servability check: serve a packaged version for real and compare it with the model in process.

Before a version is promoted it is served by a fresh ``bentoml serve`` on a free loopback port, loading the
packaged version from the model store; holdout rows are sent over HTTP and the answers (the service's fast path)
must equal the in-process scikit-learn pipeline's within a tolerance, and single-row latency must stay within the
spec's budget. A package that cannot load, rejects rows it was trained on, or answers differently is never promoted.

Starting ``bentoml serve`` and importing the service costs 10-20 s here, so the train flow pays it while the model
trains: :func:`start` launches the service waiting for its version (``WAIT_ENV``: the workers import everything,
then wait), and :func:`check` hands it the packaged tag, so only loading the model is left. A service started this
way dies with the process that started it (a watchdog); :func:`stop` ends it on every other path.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from driftline.libs import lazy_module
from driftline.runtime.processes import bentoml_command, launch, stop_group
from driftline.runtime.server import free_port
from driftline.serving.config import CONFIG_ENV, SERVICE, WAIT_ENV, ServeConfig, files_of, hand_over
from driftline.serving.requests import describe_errors
from driftline.serving.supervisor import FAILURE_ENV
from driftline.settings import pause_at
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    np = lazy_module("numpy")
    pd = lazy_module("pandas")


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


@dataclass(frozen=True)
class PendingService:
    """A ``bentoml serve`` started ahead of its version (:func:`start`): where it listens and where it is told."""

    pid: int
    port: int
    handoff: str  # the file its workers wait for (a ServeConfig as JSON); empty if started on its version
    failure: str  # where it writes why it cannot start
    log: str


STOP_SECONDS = 3.0  # then SIGKILL: a check's service holds nothing to flush (no profiling), and a train waits on it
# The processes :func:`start` launched, by pid, with their owner: only this process can stop them.
_started: dict[int, subprocess.Popen[bytes]] = {}
_owners: dict[int, str | None] = {}


def start(log_dir: Path, owner: str | None = None, config: ServeConfig | None = None) -> PendingService:
    """Start the service for a version not packaged yet: it imports everything and waits for :func:`check`.

    ``owner`` (a flow run's id) lets :func:`stop_all` stop only that run's services. With ``config`` the service
    starts on that version at once (no waiting, and a model that cannot load is reported before any worker starts).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    stem = f"servability-{os.getpid()}-{port}"
    handoff, failure, log_path = (log_dir / f"{stem}{suffix}" for suffix in (".json", ".failure", ".log"))
    for path in (handoff, failure):
        path.unlink(missing_ok=True)
    # Profiling off: holdout rows are not live traffic. Auth off: the check talks to its own loopback process.
    # A model that cannot load is reported in the failure file (see driftline.serving.supervisor): no waiting.
    env = {name: value for name, value in os.environ.items() if name not in (CONFIG_ENV, WAIT_ENV)}
    env |= config.to_env() if config is not None else {WAIT_ENV: str(handoff)}
    env[FAILURE_ENV] = str(failure)
    command = [bentoml_command(), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]
    process = launch(command, log_path, env=env, die_with_parent=True)
    _started[process.pid] = process
    _owners[process.pid] = owner
    return PendingService(process.pid, port, str(handoff) if config is None else "", str(failure), str(log_path))


def stop(service: PendingService) -> None:
    """Stop a service :func:`start` launched (nothing if it is already stopped)."""
    process = _started.pop(service.pid, None)
    _owners.pop(service.pid, None)
    if process is not None:
        stop_group(process, timeout=STOP_SECONDS)


def check(
    tag: str,
    model: Any,
    rows: pd.DataFrame,
    spec: ModelSpec,
    log_dir: Path,
    service: PendingService | None = None,
) -> ServabilityReport:
    """Serve ``tag``, send ``rows`` (feature columns), compare with ``model``; never raises on a bad package.

    ``service``: one :func:`start` launched ahead (it is handed ``tag``); without it, one is started now. Either is
    stopped before this returns.
    """
    features = rows[spec.features.columns].head(spec.serving.check_rows).reset_index(drop=True)
    config = ServeConfig(tag=tag, files=files_of(tag))
    if service is None or service.pid not in _started:
        service = start(log_dir, config=config)
    process = _started[service.pid]
    try:
        if service.handoff:
            hand_over(Path(service.handoff), config)
        url = f"http://127.0.0.1:{service.port}"
        return _probe(url, process, model, features, spec, Path(service.log), Path(service.failure))
    finally:
        stop(service)


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


def stop_all(owner: str | None = None) -> None:
    """Stop the services :func:`start` launched in this process for ``owner`` (None: all of them)."""
    for pid, process in list(_started.items()):
        if owner is None or _owners.get(pid) == owner:
            _started.pop(pid, None)
            _owners.pop(pid, None)
            stop_group(process, timeout=STOP_SECONDS)
