"""The one door to the heavy libraries: each is imported on first use, with telemetry off.

great_expectations takes 5-8 s to import and whylogs and bentoml about a second each, so nothing imports them at
module level; the CLI and flows start fast and pay only for what a run uses.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from driftline.settings import get_settings, quiet_telemetry


class LazyModule(ModuleType):
    """A module imported on first attribute access, then read like the module itself (SPEC 1's ``lazy.load``).

    For numpy, pandas and SQLAlchemy in modules a flow imports: ``import flows.train`` pays for none of them until a
    task runs. Under ``if TYPE_CHECKING:`` a module imports the real one, so mypy sees its types::

        if TYPE_CHECKING:
            import numpy as np
        else:
            np = lazy_module("numpy")
    """

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(importlib.import_module(self.__name__), attribute)
        setattr(self, attribute, value)  # the next read is a plain attribute lookup
        return value


def lazy_module(name: str) -> Any:
    return LazyModule(name)


def numpy_compat() -> None:
    """Restore the numpy 1 aliases whylogs 1.6.4 still calls (``np.unicode_``; removed in numpy 2).

    whylogs is effectively unmaintained (its numpy-2 issue #1600 was closed as stale), so this shim lives here, in
    one place, and is applied before whylogs is imported.
    """
    import numpy as np

    for alias, target in (("unicode_", np.str_), ("string_", np.bytes_), ("float_", np.float64)):
        if alias not in np.__dict__:
            setattr(np, alias, target)


def great_expectations() -> Any:
    quiet_telemetry()
    import great_expectations as gx

    return gx


def whylogs() -> Any:
    quiet_telemetry()
    numpy_compat()
    import whylogs as why

    return why


def bentoml() -> Any:
    """Import bentoml with its model store under driftline's state directory unless BENTOML_HOME is set."""
    quiet_telemetry()
    os.environ.setdefault("BENTOML_HOME", str(get_settings().bentoml_home))
    import bentoml as bento

    return bento


_ESTIMATOR_LIBRARIES = {
    "xgboost": ("xgboost",),
    "random_forest": ("sklearn.ensemble",),
    "gradient_boosting": ("sklearn.ensemble",),
}


def load_for_fitting(estimator: str) -> list[str]:
    """Import whylogs, scikit-learn and the estimator's library in this thread; return the ones not loaded yet.

    The train flow calls it before it profiles in a worker thread alongside the fit: two threads importing the same
    packages can deadlock on Python's per-module import locks (``_DeadlockError``, seen with GX and scikit-learn
    both importing narwhals), so heavy imports happen in one thread, and the threads only compute.
    """
    import importlib
    import sys
    from functools import partial

    loads: list[tuple[str, Any]] = [("whylogs", whylogs)]
    for name in ("sklearn.pipeline", *_ESTIMATOR_LIBRARIES.get(estimator, ())):
        loads.append((name, partial(importlib.import_module, name)))
    imported = []
    for name, load in loads:
        if name not in sys.modules:
            load()
            imported.append(name)
    return imported
