"""How a model version is served: the service's configuration, its bearer-token auth, and single-row batching.

``driftline serve``, the servability check and ``driftline build`` all start the same BentoML service
(``driftline.serving.service:ModelService``); what differs is a :class:`ServeConfig`, made from the model's spec and
handed over in one environment variable, ``DRIFTLINE_SERVE_CONFIG`` (JSON). No BentoML here, so the CLI stays fast.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from driftline.errors import SpecError, StoreError
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    from driftline.registry import VersionRecord

SERVICE = "driftline.serving.service:ModelService"  # what `bentoml serve` and `bentoml build` are given
CONFIG_ENV = "DRIFTLINE_SERVE_CONFIG"
# A file: a service started with it (and no CONFIG_ENV) imports everything, then waits for its ServeConfig (JSON) to
# appear there, so the servability check can start it while the model trains and hand it the version once packaged.
WAIT_ENV = "DRIFTLINE_SERVE_WAIT"
PROTECTED_ROUTES = ("/predict", "/predict_one", "/model")
API_ROUTES = PROTECTED_ROUTES  # the prediction routes: JSON only, RequestError documented (driftline.serving.guard)

T = TypeVar("T")
R = TypeVar("R")


class ServeConfig(BaseModel):
    """What one service process serves and how: the version, traffic profiling, auth."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str
    # sha256 of the version's model files, recorded at packaging; the service checks them before it unpickles.
    files: dict[str, str] | None = None
    profile_store: str | None = None  # None: live-traffic profiling off
    window_seconds: float = 3600.0
    token_env: str | None = None
    token_secret: str | None = None
    follow: bool = False  # serve the champion, and restart on a promotion or rollback
    follow_seconds: float = 5.0
    max_body_mb: float = 10.0  # a larger request body is refused (413) while it streams in

    @property
    def model(self) -> str:
        return self.tag.split(":", 1)[0]

    @property
    def version(self) -> str:
        return self.tag.split(":", 1)[1]

    @property
    def auth(self) -> bool:
        return bool(self.token_env or self.token_secret)

    def to_env(self) -> dict[str, str]:
        return {CONFIG_ENV: self.model_dump_json()}


def config_for(
    spec: ModelSpec,
    tag: str,
    *,
    profile: bool = True,
    follow: bool = False,
    files: dict[str, str] | None = None,
) -> ServeConfig:
    """The service configuration the spec asks for (``[serving]``), for version ``tag``.

    ``follow``: serve whichever version is champion; ``tag`` is the champion when the service starts. ``files``:
    the version's recorded digests (default: read from the registry; none there and the service refuses to load).
    """
    from driftline.settings import get_settings

    return ServeConfig(
        tag=tag,
        files=files if files is not None else files_of(tag),
        profile_store=get_settings().profiles if profile and spec.serving.profile_traffic else None,
        window_seconds=spec.serving.window_minutes * 60,
        token_env=spec.serving.token_env,
        token_secret=spec.serving.token_secret,
        follow=follow,
        max_body_mb=spec.serving.max_body_mb,
    )


NO_CHAMPION = "no champion yet (run `driftline train {model}`)"


def version_of(model: str, version: str | None = None, *, no_champion: str = NO_CHAMPION) -> VersionRecord:
    """The registry record of a model's version, or of its champion when no version is given.

    Without a champion, raise StoreError ``<model>: <no_champion>`` (``{model}`` in it is filled in).
    """
    from driftline.registry import open_registry

    registry = open_registry()
    if version is None:
        champion = registry.champion(model)
        if champion is None:
            raise StoreError(f"{model}: " + no_champion.format(model=model))
        version = champion.version
    return registry.version(model, version)


def tag_of(model: str, version: str | None = None, *, no_champion: str = NO_CHAMPION) -> str:
    """The BentoML tag of a model's version, or of its champion when no version is given (see ``version_of``)."""
    return version_of(model, version, no_champion=no_champion).tag


def files_of(tag: str) -> dict[str, str] | None:
    """The file digests the registry recorded for version ``tag``; None if it has none (or no such version)."""
    model, _, version = tag.partition(":")
    try:
        return version_of(model, version).lineage.model_files
    except StoreError:
        return None


def champion_tag(model: str) -> str:
    """The BentoML tag of the model's champion, for a service to serve."""
    return tag_of(model, no_champion="no champion to serve (run `driftline train {model}`)")


def config_from_env() -> ServeConfig:
    """The configuration this service process was started with.

    ``DRIFTLINE_SERVE_CONFIG`` as written by driftline; or, for a hand-started ``bentoml serve``,
    ``DRIFTLINE_SERVE_TAG`` (``name:version``) or ``DRIFTLINE_SERVE_MODEL`` (its champion) with the model's spec.
    """
    raw = os.environ.get(CONFIG_ENV)
    if raw:
        try:
            config = ServeConfig.model_validate(json.loads(raw))
        except ValueError as error:
            raise SpecError(f"{CONFIG_ENV}: not a valid service configuration: {error}") from None
        # A Bento carries the store it was built with; where it runs, DRIFTLINE_PROFILE_STORE points elsewhere.
        store = os.environ.get("DRIFTLINE_PROFILE_STORE")
        if store and config.profile_store:
            config = config.model_copy(update={"profile_store": store})
        if config.follow:  # a (re)started worker serves the champion of now
            champion = champion_tag(config.model)
            config = config.model_copy(update={"tag": champion, "files": files_of(champion)})
        return config
    from driftline.spec import load_spec

    tag = os.environ.get("DRIFTLINE_SERVE_TAG")
    model = tag.split(":", 1)[0] if tag else os.environ.get("DRIFTLINE_SERVE_MODEL")
    if not model:
        raise StoreError(
            f"set {CONFIG_ENV} (`driftline serve` does), DRIFTLINE_SERVE_TAG (name:version) "
            "or DRIFTLINE_SERVE_MODEL (serve its champion)"
        )
    return config_for(load_spec(model), tag or champion_tag(model), follow=not tag)


def hand_over(path: Path, config: ServeConfig) -> None:
    """Give a waiting service (``WAIT_ENV``) its configuration: written whole, then renamed into place."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(config.model_dump_json())
    partial.replace(path)


def wait_for_config(path: Path, poll: float = 0.02) -> ServeConfig:
    """The configuration handed over in ``path`` (``hand_over``), once it is there."""
    while not path.exists():
        time.sleep(poll)
    try:
        return ServeConfig.model_validate_json(path.read_text())
    except ValueError as error:
        raise SpecError(f"{path}: not a valid service configuration: {error}") from None


def resolve_token(config: ServeConfig) -> str | None:
    """The bearer token the prediction endpoints require, or None when auth is off (the default)."""
    if config.token_env:
        token = os.environ.get(config.token_env, "")
        if not token:
            raise SpecError(
                f"serving.token_env: environment variable {config.token_env} is empty or not set "
                "(the service will not start unprotected when the spec asks for a token)"
            )
        return token
    if config.token_secret:
        try:
            from prefect.blocks.system import Secret

            # _sync: the server may build its app inside an event loop, where load() would return a coroutine.
            block = cast(Secret[str], Secret.load(config.token_secret, _sync=True))  # type: ignore[call-arg]
            token = str(block.get())
        except Exception as error:  # any failure to load the block means: no token, no start
            raise SpecError(
                f"serving.token_secret: cannot load Prefect Secret block {config.token_secret!r}: {error} "
                f"(create it with `prefect block create secret` or Secret(value=...).save({config.token_secret!r}))"
            ) from None
        if not token:
            raise SpecError(f"serving.token_secret: Prefect Secret block {config.token_secret!r} is empty")
        return token
    return None
