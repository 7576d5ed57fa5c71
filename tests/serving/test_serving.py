"""The service's configuration, its bearer-token auth and the single-row coalescer, without a server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from driftline.errors import SpecError
from driftline.serving.auth import BearerAuth
from driftline.serving.batching import Coalescer
from driftline.serving.config import CONFIG_ENV, ServeConfig, config_for, config_from_env
from driftline.spec import load_spec
from tests.conftest import Project


def test_the_config_comes_from_the_spec_and_travels_in_one_variable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec("fraud", {"serving.window_minutes": 5, "serving.token_env": "FRAUD_TOKEN"})
    config = config_for(spec, "fraud:abc")
    assert (config.model, config.version, config.window_seconds) == ("fraud", "abc", 300)
    assert config.profile_store is not None and config.profile_store.endswith("profiles") and config.auth
    assert config_for(spec, "fraud:abc", profile=False).profile_store is None

    monkeypatch.setenv(CONFIG_ENV, config.model_dump_json())
    assert config_from_env() == config
    monkeypatch.setenv("DRIFTLINE_PROFILE_STORE", "memory://elsewhere")  # where a Bento runs
    assert config_from_env().profile_store == "memory://elsewhere"
    monkeypatch.setenv(CONFIG_ENV, '{"tag": "fraud:abc", "window": 1}')
    with pytest.raises(SpecError, match=f"{CONFIG_ENV}: not a valid service configuration"):
        config_from_env()


def test_the_spec_names_one_token_source_never_the_token(project: Project) -> None:
    with pytest.raises(SpecError, match="set token_env or token_secret, not both"):
        load_spec("fraud", {"serving.token_env": "A", "serving.token_secret": "b"})


async def _call(app: Any, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await app(scope, None, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_bearer_auth_guards_the_prediction_routes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_TOKEN", "s3cret")
    auth = BearerAuth(_ok, ServeConfig(tag="fraud:abc", token_env="FRAUD_TOKEN"))
    assert asyncio.run(_call(auth, "/predict", {"Authorization": "Bearer s3cret"})) == (200, b"ok")
    status, body = asyncio.run(_call(auth, "/predict_one", {}))
    assert status == 401 and "missing bearer token" in json.loads(body)["error"]
    status, body = asyncio.run(_call(auth, "/predict", {"Authorization": "Bearer guess"}))
    assert status == 401 and "wrong bearer token" in json.loads(body)["error"]
    assert asyncio.run(_call(auth, "/health", {}))[0] == 200  # probes need no secret
    assert asyncio.run(_call(auth, "/readyz", {}))[0] == 200


def test_a_missing_token_stops_the_service_from_starting(monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> None:
    monkeypatch.delenv("FRAUD_TOKEN", raising=False)
    with pytest.raises(SpecError, match=r"serving\.token_env: environment variable FRAUD_TOKEN is empty or not set"):
        BearerAuth(_ok, ServeConfig(tag="fraud:abc", token_env="FRAUD_TOKEN"))
    with pytest.raises(SpecError, match=r"serving\.token_secret: cannot load Prefect Secret block 'no-such-block'"):
        BearerAuth(_ok, ServeConfig(tag="fraud:abc", token_secret="no-such-block"))


def test_concurrent_single_calls_share_batches_and_each_gets_its_own_answer() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)  # the model is busy; newcomers queue for the next batch
        return [item * 10 for item in items]

    async def scenario() -> list[int]:
        coalescer = Coalescer(run, max_size=4)
        return list(await asyncio.gather(*(coalescer.submit(i) for i in range(10))))

    assert asyncio.run(scenario()) == [i * 10 for i in range(10)]
    assert batches[0] == [0, 1, 2, 3]  # all ten were waiting before the first batch ran: max_size splits them
    assert sorted(x for batch in batches for x in batch) == list(range(10))
    assert max(len(batch) for batch in batches) <= 4 and len(batches) == 3


def test_a_lone_call_runs_at_once_and_a_failing_batch_fails_only_its_callers() -> None:
    async def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("model exploded")
        return items

    async def scenario() -> tuple[int, BaseException | int]:
        coalescer = Coalescer(run)
        alone = await coalescer.submit(1)
        failed = await asyncio.gather(coalescer.submit(13), return_exceptions=True)
        return alone, failed[0]

    alone, failed = asyncio.run(scenario())
    assert alone == 1 and isinstance(failed, RuntimeError)


def test_the_token_can_live_in_a_prefect_secret_block(prefect_server: str) -> None:
    from prefect.blocks.system import Secret

    Secret(value="from-the-block").save("fraud-serve-token", overwrite=True)
    auth = BearerAuth(_ok, ServeConfig(tag="fraud:abc", token_secret="fraud-serve-token"))
    assert asyncio.run(_call(auth, "/predict", {"Authorization": "Bearer from-the-block"}))[0] == 200
    assert asyncio.run(_call(auth, "/predict", {"Authorization": "Bearer other"}))[0] == 401
