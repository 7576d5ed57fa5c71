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
from driftline.serving.config import API_ROUTES, champion_tag, config_from_env
from driftline.serving.guard import RequestGuard
from driftline.serving.requests import MAX_ROWS, row_model, to_frame
from driftline.serving.supervisor import report_startup_failure
from driftline.settings import quiet_telemetry

quiet_telemetry()
bentoml = libs.bentoml()


def _cannot_start(what: str, error: BaseException | str) -> NoReturn:
    """Report why the service cannot start (driftline.serving.supervisor stops it at once), then fail."""
    reason = f"{what}: {error}" if isinstance(error, str) else f"{what}: {type(error).__name__}: {error}"
    report_startup_failure(reason)
    raise StoreError(reason) from (None if isinstance(error, str) else error)


try:
    CONFIG = config_from_env()
except Exception as error:
    _cannot_start("no service configuration", error)
try:
    # Before anything of the model is unpickled (custom_objects.pkl here, saved_model.pkl below): its files must be
    # the ones packaged, or the service does not start (ModelIntegrityError names the file).
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


if Path(sys.argv[0]).name == "bentoml" and sys.argv[1:2] == ["serve"]:
    # `bentoml serve` itself (not a worker, not `bentoml build`) imports this module before it binds the port and
    # starts workers: a model that cannot be unpickled (say, a library missing where a Bento runs) ends it here, at
    # once, non-zero, with the reason, even when no `driftline serve` supervises it; workers would crash-loop.
    load_error = _load_error(CONFIG.tag)
    if load_error is not None:
        _cannot_start(f"cannot load model {CONFIG.tag}", load_error)
Row = row_model(SCHEMA, f"{CONFIG.model}_row")
Rows = Annotated[list[Row], Field(min_length=1, max_length=MAX_ROWS)]  # type: ignore[valid-type]

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
        """Predictions (and probabilities) for validated rows, in one pass through the pipeline.

        A classifier's prediction is its most probable class, which is what ``predict`` answers for every estimator
        driftline trains; the servability check compares the two before a version is promoted.
        """
        frame = to_frame(rows, SCHEMA)
        steps = getattr(self.model, "steps", None)
        if steps:
            features, estimator = self.model[:-1].transform(frame), self.model[-1]
        else:
            features, estimator = frame, self.model
        probabilities = None
        if self.classes:
            scores = np.asarray(estimator.predict_proba(features), dtype=float)
            predictions = _plain(np.asarray(estimator.classes_)[scores.argmax(axis=1)])
            probabilities = scores.round(6).tolist()
        else:
            predictions = _plain(estimator.predict(features))
        if self.profiler is not None:
            self.profiler.observe([row.model_dump() for row in rows], predictions)
        return predictions, probabilities

    async def _predict_rows(self, rows: list[BaseModel]) -> list[dict[str, Any]]:
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
        """The served model's tag and the state of live-traffic profiling (readiness itself is /readyz)."""
        profiling = self.profiler.status.__dict__ if self.profiler is not None else None
        return {"status": "ok", "model": self.tag, "auth": CONFIG.auth, "profiling": profiling}

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
