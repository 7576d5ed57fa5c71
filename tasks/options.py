"""The options every driftline task shares, written once: how it retries and that nothing is cached.

A task is a name, one of these and one call into the logic (``driftline/``). Retries are only for I/O that can
succeed next time (a store, a file system or the registry that blipped); training, validation, gates and drift
scores get the same answer on a second try, so they never retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
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


def step(name: str, retries: Retries | None = None) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a driftline task named ``name`` (kebab-case): never cached, retried only for I/O.

    Inputs are frames, fitted models and specs: hashing them for a cache key costs more than the step, and a
    cached answer to "what is in the landing area now" would be wrong.
    """
    if retries is None:
        return task(name=name, cache_policy=NO_CACHE)
    return task(
        name=name,
        retries=retries.count,
        retry_delay_seconds=list(retries.delays),
        retry_condition_fn=_worth_retrying,
        cache_policy=NO_CACHE,
    )


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
