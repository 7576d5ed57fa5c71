"""Every task shares one set of options: never cached, retried only where it does I/O that can succeed next time."""

from __future__ import annotations

import importlib
import pkgutil

from prefect import Task
from prefect.cache_policies import NO_CACHE

import tasks

# Training, validation, gates and drift scores give the same answer on a second try: they never retry.
NEVER_RETRIED = {
    "validate-batch",
    "validate-batches",
    "check-columns",
    "split-holdout",
    "fit-model",
    "evaluate-model",
    "decide-promotion",
    "check-servability",
    "promote-version",  # a compare-and-set that lost must not be retried into a win
    "predict-batch",
}


def _tasks() -> list[Task[..., object]]:
    found = []
    for module in pkgutil.iter_modules(tasks.__path__):
        loaded = importlib.import_module(f"tasks.{module.name}")
        found += [value for value in vars(loaded).values() if isinstance(value, Task)]
    return found


def test_every_task_is_uncached_and_named_in_kebab_case() -> None:
    found = _tasks()

    assert len(found) >= 30
    for task in found:
        assert task.cache_policy is NO_CACHE, task.name
        assert task.name == task.name.lower() and "_" not in task.name, task.name


def test_only_io_tasks_retry() -> None:
    retried = {task.name: task.retries for task in _tasks()}

    assert {name: retried[name] for name in NEVER_RETRIED} == dict.fromkeys(NEVER_RETRIED, 0)
    assert retried["load-batches"] == 2 and retried["read-champion"] == 2
