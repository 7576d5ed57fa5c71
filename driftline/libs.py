"""The one door to the heavy libraries: each is imported on first use, with telemetry off.

great_expectations takes 5-8 s to import and whylogs and bentoml about a second each, so nothing imports them at
module level; the CLI and flows start fast and pay only for what a run uses.
"""

from __future__ import annotations

import os
from typing import Any

from driftline.settings import get_settings, quiet_telemetry


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
