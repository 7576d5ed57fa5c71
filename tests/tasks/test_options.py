"""Every task shares one set of options: cached only where the answer depends on its inputs alone (keyed on
fingerprints and digests), retried only where it does I/O that can succeed next time."""

from __future__ import annotations

import importlib
import pkgutil

from prefect import Task
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy

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


# Validation, profiling and fitting: the same batch, suite, spec and code give the same answer.
CACHED = {"validate-batch", "profile-batch", "fit-model"}


def test_only_validation_profiling_and_fitting_are_cached_and_every_task_is_named_in_kebab_case() -> None:
    found = _tasks()

    assert len(found) >= 30
    for task in found:
        if task.name in CACHED:
            assert isinstance(task.cache_policy, CacheKeyFnPolicy), task.name
            assert task.persist_result is True, task.name
        else:
            assert task.cache_policy is NO_CACHE, task.name
        assert task.name == task.name.lower() and "_" not in task.name, task.name
    assert {task.name for task in found} >= CACHED


def test_only_io_tasks_retry() -> None:
    retried = {task.name: task.retries for task in _tasks()}

    assert {name: retried[name] for name in NEVER_RETRIED} == dict.fromkeys(NEVER_RETRIED, 0)
    assert retried["load-batches"] == 2 and retried["read-champion"] == 2
