"""The options every driftline task shares, written once: how it retries and which tasks are cached.

A task is a name, one of these and one call into the logic (``driftline/``). Retries are only for I/O that can
succeed next time (a store, a file system or the registry that blipped); training, validation, gates and drift
scores get the same answer on a second try, so they never retry.

Three steps are cached across processes: validating a batch, profiling it, fitting the model. Their keys are the
batch's fingerprint and the suite, spec and code digests (``driftline/loop/caching.py``), never a hash of the frames,
and Prefect persists their results; a rerun on unchanged input recomputes none of them. Everything else is
uncached: hashing its inputs (frames, fitted models) costs more than the step, and a cached answer to "what is in
the landing area now" or "who is champion" would be wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy, CachePolicy
from prefect.exceptions import MissingContextError

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Retries:
    """How often a task that does I/O is tried again, and how long it waits before each try."""

    count: int
    delays: tuple[float, ...]


FILES = Retries(2, (2, 10))  # a file system or object store: a slow listing, a dropped connection
REGISTRY = Retries(2, (1, 5))  # the registry's database: a locked SQLite file, a restarted PostgreSQL
MODEL_STORE = Retries(1, (2,))  # the model store and profile store, read once more before the run fails


def step(
    name: str, retries: Retries | None = None, cache: CachePolicy = NO_CACHE
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a driftline task named ``name`` (kebab-case): retried only for I/O, cached only if ``cache``
    (one of the policies below) says how to key it."""
    persist = None if cache is NO_CACHE else True  # a cached answer is kept in Prefect's result storage
    if retries is None:
        return task(name=name, cache_policy=cache, persist_result=persist)
    return task(
        name=name,
        retries=retries.count,
        retry_delay_seconds=list(retries.delays),
        retry_condition_fn=_worth_retrying,
        cache_policy=cache,
        persist_result=persist,
    )


def _validation_key(context: Any, parameters: dict[str, Any]) -> str | None:
    from driftline.loop import caching

    return caching.validation_key(parameters["spec"], parameters["batch"])


def _profile_key(context: Any, parameters: dict[str, Any]) -> str | None:
    from driftline.loop import caching
    from driftline.settings import get_settings

    spec, batch, kind = parameters["spec"], parameters["batch"], parameters.get("kind", "reference")
    return caching.profile_key(spec, batch, kind, get_settings().profiles, parameters.get("predictions") is not None)


def _fit_key(context: Any, parameters: dict[str, Any]) -> str | None:
    from driftline.loop import caching, modeling

    return caching.fit_key(parameters["spec"], parameters["split"], modeling.fit_threads())


VALIDATION = CacheKeyFnPolicy(cache_key_fn=_validation_key)  # one batch against the suite
PROFILE = CacheKeyFnPolicy(cache_key_fn=_profile_key)  # one batch into the profile store
FIT = CacheKeyFnPolicy(cache_key_fn=_fit_key)  # the training rows of one split


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O, never a spec error or a file whose content cannot be read: the next try reads the same bytes."""
    from driftline.errors import SpecError, UnreadableFile

    return not isinstance(state.data, (SpecError, UnreadableFile))


def run_logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The run's logger (its lines show in the Prefect UI); driftline's own outside a run (a task called by ``.fn``)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("driftline")
