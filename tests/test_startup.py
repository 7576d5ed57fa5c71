"""Start-up cost: importing a flow or the deployments pays for Prefect and nothing heavier.

pandas, numpy and SQLAlchemy are read through ``driftline.libs.lazy_module`` in the modules a flow imports, and the
heavy libraries are imported inside the functions that use them, so ``import flows.train`` costs what
``from prefect import flow`` costs. A run imports each library when a task first needs it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from driftline.libs import LazyModule, lazy_module
from tests.conftest import REPO

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "sqlalchemy",
    "scipy",
    "sklearn",
    "xgboost",
    "great_expectations",
    "whylogs",
    "bentoml",
)


@pytest.mark.parametrize("module", ["flows.train", "flows.monitor", "flows.retrain", "deployments.serve"])
def test_importing_a_flow_imports_no_heavy_library(module: str) -> None:
    code = (
        "import sys\n"
        f"import {module}\n"
        f"print('HEAVY', sorted({{m.partition('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert "HEAVY []" in result.stdout, result.stdout


def test_a_lazy_module_imports_on_first_use_and_then_is_the_module() -> None:
    code = (
        "import sys\n"
        "from driftline.libs import lazy_module\n"
        "colorsys = lazy_module('colorsys')\n"
        "before = 'colorsys' in sys.modules\n"
        "hsv = colorsys.rgb_to_hsv(1.0, 0.0, 0.0)\n"
        "print(before, 'colorsys' in sys.modules, hsv, colorsys.rgb_to_hsv is sys.modules['colorsys'].rgb_to_hsv)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.split() == ["False", "True", "(0.0,", "1.0,", "1.0)", "True"]


def test_a_lazy_module_names_a_missing_attribute() -> None:
    module = lazy_module("json")
    assert isinstance(module, LazyModule)
    with pytest.raises(AttributeError, match=r"json.*no_such_name"):
        module.no_such_name  # noqa: B018
