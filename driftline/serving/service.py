"""The BentoML service for a model version: ``bentoml serve driftline.serving.service:ModelService``.

Endpoints (JSON over HTTP):

- ``POST /predict`` ``{"rows": [...]}`` (up to 10,000): predictions, and each class's probability for classifiers;
- ``POST /predict_one`` ``{"row": {...}}``: one prediction; concurrent single-row requests share one pass through
  the model (adaptive batching);
- ``POST /model``: the version's tag and input schema; ``GET /health``: the tag and traffic profiling's state;
  BentoML's ``/readyz`` and ``/livez`` for probes; the OpenAPI page at ``/``.

Every request is validated against a model generated from the version's training schema before the model runs,
so a bad row is a 400 naming the field and the rule. Served rows and predictions are profiled with whylogs in
windows (``serving.window_minutes``) and written to the profile store for the monitor. With ``serving.token_env``
or ``serving.token_secret`` the prediction endpoints require ``Authorization: Bearer <token>``.

This module is the service's entry point and nothing else imports it: the request model must exist when the
class is defined, so the configuration is read and the schema loaded at import time here, and only here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import anyio
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field

from driftline import libs
from driftline.errors import StoreError
from driftline.loop import integrity
from driftline.loop.modeling import TrainingSchema
from driftline.monitoring.traffic import TrafficProfiler
from driftline.serving.auth import BearerAuth
from driftline.serving.batching import Coalescer
from driftline.serving.config import (
    API_ROUTES,
    CONFIG_ENV,
    WAIT_ENV,
    ServeConfig,
    champion_tag,
    config_from_env,
    wait_for_config,
)
from driftline.serving.fastpath import CompiledModel, compile_model
from driftline.serving.guard import RequestGuard
from driftline.serving.requests import MAX_ROWS, row_model, to_frame
from driftline.serving.supervisor import FAILURE_ENV, report_startup_failure
from driftline.settings import quiet_telemetry

quiet_telemetry()
bentoml = libs.bentoml()


def _cannot_start(what: str, error: BaseException | str) -> NoReturn:
    """Report why the service cannot start (driftline.serving.supervisor stops it at once), then fail."""
    reason = f"{what}: {error}" if isinstance(error, str) else f"{what}: {type(error).__name__}: {error}"
    report_startup_failure(reason)
    raise StoreError(reason) from (None if isinstance(error, str) else error)


# `bentoml serve` itself (not a worker, not `bentoml build`): it imports this module, binds the port and starts the
# workers, which import it again and serve.
SERVER = Path(sys.argv[0]).name == "bentoml" and sys.argv[1:2] == ["serve"]
# Started before its version exists (the servability check starts it while the model trains): each worker imports
# everything, then waits for the version to be handed over; `bentoml serve` itself serves nothing and never needs it.
WAITING = bool(os.environ.get(WAIT_ENV)) and not os.environ.get(CONFIG_ENV)


def _configuration() -> ServeConfig:
    if not WAITING:
        return config_from_env()
    if SERVER:
        return ServeConfig(tag="pending:pending")
    _warm_imports()
    return wait_for_config(Path(os.environ[WAIT_ENV]))


def _warm_imports() -> None:
    """Import what unpickling a model imports, while there is nothing else to do."""
    import importlib

    for name in ("sklearn.pipeline", "sklearn.compose", "sklearn.impute", "sklearn.preprocessing", "xgboost"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    importlib.import_module("driftline.loop.estimators")


try:
    CONFIG = _configuration()
except Exception as error:
    _cannot_start("no service configuration", error)
if WAITING and SERVER:
    SCHEMA = TrainingSchema(columns=(), target="")
else:
    try:
        # Before anything of the model is unpickled (custom_objects.pkl here, saved_model.pkl below): its files must
        # be the ones packaged, or the service does not start (ModelIntegrityError names the file).
        integrity.verify(CONFIG.tag, Path(bentoml.models.get(CONFIG.tag).path), CONFIG.files)
        # Saved as TrainingSchema.as_dict(), by this driftline or an earlier one.
        SCHEMA = TrainingSchema.from_dict(bentoml.models.get(CONFIG.tag).custom_objects["schema"])
    except Exception as error:
        _cannot_start(f"cannot read model {CONFIG.tag} from the model store", error)


def _load_error(tag: str) -> str | None:
    """Why ``tag`` cannot be loaded (None if it can), found in a forked child so this process keeps no model."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: load, say why not, and leave without running any exit hook
        os.close(read)
        try:
            bentoml.sklearn.load_model(tag)
            message = b""
        except BaseException as error:
            message = f"{type(error).__name__}: {error}".encode()[:4000]
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    if message:
        return message.decode("utf-8", "replace")
    if status != 0:
        return f"the process loading it ended with status {status}"
    return None


if SERVER and not WAITING and not os.environ.get(FAILURE_ENV):
    # A plain `bentoml serve` imports this module before it binds the port and starts workers: a model that cannot
    # be unpickled (say, a library missing where a Bento runs) ends it here, at once, non-zero, with the reason;
    # workers would crash-loop. Under a supervisor (FAILURE_ENV: `driftline serve`, the servability check) the
    # worker's own report stops the service just as fast, so the 2-3 s of loading the model twice are not paid.
    load_error = _load_error(CONFIG.tag)
    if load_error is not None:
        _cannot_start(f"cannot load model {CONFIG.tag}", load_error)
Row = row_model(SCHEMA, f"{CONFIG.model}_row")
Rows = Annotated[list[Row], Field(min_length=1, max_length=MAX_ROWS)]  # type: ignore[valid-type]

FAST_ROWS = 1_000  # the fast path's loop over rows in Python beats the pipeline's overhead up to about here
INLINE_ROWS = 64  # batches of single rows this small are answered on the event loop, not in a thread

operations = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
logger = logging.getLogger("driftline.service")


def _plain(values: Any) -> list[Any]:
    return [value.item() if isinstance(value, np.generic) else value for value in np.asarray(values).tolist()]


@bentoml.service(name="driftline", traffic={"timeout": 30})
@bentoml.asgi_app(operations, path="/")
class ModelService:
    """Predictions from one model version, with the training schema enforced on every request."""

    def __init__(self) -> None:
        self.tag = CONFIG.tag
        try:
            # Checked again in each worker, before saved_model.pkl is unpickled.
            integrity.verify(self.tag, Path(bentoml.models.get(self.tag).path), CONFIG.files)
            self.model = bentoml.sklearn.load_model(self.tag)
        except Exception as error:
            _cannot_start(f"cannot load model {self.tag}", error)
        self.classes = list(SCHEMA.classes)
        compiled = compile_model(self.model)
        self.fast: CompiledModel | None = compiled if isinstance(compiled, CompiledModel) else None
        self.fast_path = "on" if isinstance(compiled, CompiledModel) else f"off: {compiled.reason}"
        if isinstance(compiled, CompiledModel):
            logger.info("driftline: %s answers up to %d rows through the numpy fast path", self.tag, FAST_ROWS)
        else:
            logger.warning("driftline: %s is served through its scikit-learn pipeline: %s", self.tag, compiled.reason)
        self.coalescer: Coalescer[Any, dict[str, Any]] = Coalescer(self._predict_rows)
        self.profiler: TrafficProfiler | None = None
        if CONFIG.profile_store:
            self.profiler = TrafficProfiler(
                CONFIG.profile_store, CONFIG.model, CONFIG.version, CONFIG.window_seconds
            ).start()
        if CONFIG.follow:
            threading.Thread(target=self._follow_champion, name="driftline-champion-watch", daemon=True).start()

    def _follow_champion(self) -> None:
        """Restart this worker when the champion changes: BentoML starts a fresh one, which serves the new champion.

        A restart (not an in-place swap) because the request model is the version's schema; requests arriving
        meanwhile wait in the listening socket's backlog.
        """
        while True:
            time.sleep(CONFIG.follow_seconds)
            try:
                current = champion_tag(CONFIG.model)
            except Exception:  # a registry outage must not stop serving the version we have
                logger.exception("driftline: cannot read the champion of %s; still serving %s", CONFIG.model, self.tag)
                continue
            if current != self.tag:
                logger.warning(
                    "driftline: champion of %s is now %s (was %s); restarting", CONFIG.model, current, self.tag
                )
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def _answer(self, rows: list[BaseModel]) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions (and probabilities) for validated rows, in one pass through the model.

        A classifier's prediction is its most probable class, which is what ``predict`` answers for every estimator
        driftline trains; the servability check compares the two before a version is promoted. Up to
        ``FAST_ROWS`` rows go through the compiled fast path (driftline.serving.fastpath), more through the
        pipeline, whose per-call overhead is then small beside its vectorised work.
        """
        records = [row.model_dump() for row in rows]
        fast = self.fast if self.fast is not None and len(records) <= FAST_ROWS else None
        probabilities = None
        if self.classes:
            if fast is not None:
                scores, classes = np.asarray(fast.predict_proba(records), dtype=float), fast.classes
            else:
                estimator, features = self._split(records)
                scores, classes = np.asarray(estimator.predict_proba(features), dtype=float), estimator.classes_
            predictions = _plain(np.asarray(classes)[scores.argmax(axis=1)])
            probabilities = scores.round(6).tolist()
        elif fast is not None:
            predictions = _plain(fast.predict(records))
        else:
            estimator, features = self._split(records)
            predictions = _plain(estimator.predict(features))
        if self.profiler is not None:
            self.profiler.observe(records, predictions)
        return predictions, probabilities

    def _split(self, records: list[dict[str, Any]]) -> tuple[Any, Any]:
        """The pipeline's estimator and the features its preprocessing makes of ``records``."""
        frame = to_frame(records, SCHEMA)
        steps = getattr(self.model, "steps", None)
        if steps:
            return self.model[-1], self.model[:-1].transform(frame)
        return self.model, frame

    async def _predict_rows(self, rows: list[BaseModel]) -> list[dict[str, Any]]:
        if self.fast is not None and len(rows) <= INLINE_ROWS:
            # Microseconds of numpy: a hop to a worker thread would cost more than the answer.
            predictions, probabilities = self._answer(rows)
        else:
            predictions, probabilities = await anyio.to_thread.run_sync(self._answer, rows)
        answers: list[dict[str, Any]] = [{"model": self.tag, "prediction": p} for p in predictions]
        if probabilities is not None:
            for answer, row in zip(answers, probabilities, strict=True):
                answer["probabilities"] = dict(zip(map(str, self.classes), row, strict=True))
        return answers

    @bentoml.api
    def predict(self, rows: Rows) -> dict[str, Any]:
        """Predict for a batch of rows; classifiers also return each class's probability."""
        predictions, probabilities = self._answer(rows)
        result: dict[str, Any] = {"model": self.tag, "predictions": predictions}
        if probabilities is not None:
            result["classes"] = self.classes
            result["probabilities"] = probabilities
        return result

    @bentoml.api
    async def predict_one(self, row: Row) -> dict[str, Any]:  # type: ignore[valid-type]
        """Predict for one row; concurrent single-row requests are batched together."""
        return await self.coalescer.submit(row)

    @bentoml.api(route="/model")
    def model_info(self) -> dict[str, Any]:
        """The served model's tag and input schema."""
        return {"model": self.tag, "schema": SCHEMA.as_dict()}

    @operations.get("/health")
    def health(self) -> dict[str, Any]:
        """The served model's tag, live-traffic profiling's state and the fast path's (readiness itself is /readyz)."""
        profiling = self.profiler.status.__dict__ if self.profiler is not None else None
        return {
            "status": "ok",
            "model": self.tag,
            "auth": CONFIG.auth,
            "profiling": profiling,
            "fast_path": self.fast_path,
        }

    @bentoml.on_shutdown
    def flush_profile(self) -> None:
        """Write the current traffic window's profile before the process exits."""
        if self.profiler is not None:
            self.profiler.close()


# The guard first, so it is outermost: it sees every request (401s included) and every answer.
ModelService.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestGuard, max_body_bytes=int(CONFIG.max_body_mb * 2**20), routes=API_ROUTES, auth=CONFIG.auth
)
if CONFIG.auth:
    ModelService.add_asgi_middleware(BearerAuth, config=CONFIG)  # type: ignore[attr-defined]
