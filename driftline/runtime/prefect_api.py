"""Small reads of the Prefect REST API that the demo, the bench and the tests share."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from driftline.errors import ServerError

TERMINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def deployment_id(api: str, flow: str, model: str, *, project: str | None = None, timeout: float = 120.0) -> str:
    """Find the id of a model's ``flow`` deployment in a project (default: this one), waiting until it is registered.

    The deployment's name carries the project (``driftline.deploy.deployment_name``), so callers name the model.
    """
    from driftline.oncall.events import deployment_name

    name = deployment_name(model, project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{api}/deployments/name/{quote(flow, safe='')}/{quote(name, safe='')}", timeout=10)
        if response.status_code == 200:
            return str(response.json()["id"])
        time.sleep(1)
    raise ServerError(f"deployment {flow}/{name} was not registered on {api} within {timeout:.0f} s")


def flow_runs(api: str, deployment: str, limit: int = 200) -> list[dict[str, Any]]:
    """The flow runs of a deployment, newest first."""
    body = {"flow_runs": {"deployment_id": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": limit}
    response = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10)
    response.raise_for_status()
    return list(response.json())
