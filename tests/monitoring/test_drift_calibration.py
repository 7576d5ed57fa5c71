"""The drift detector's error rates at default settings, on generated data with 2, 8 and 20 feature columns.

Half the features are numeric (standard normal), half categorical (four categories, shares 40/30/20/10); the
target is a binary label. Each check runs 20 independent batches against a 200,000-row reference:

- same-distribution batches of 30 to 1,000,000 rows raise at most one false alarm (any column) in 20;
- a column moved by 1.0 sd at 30 rows, 0.5 sd at 300 rows or 0.2 sd at 10,000 rows, and a 10-point change in one
  category's share at 1,000 rows, are flagged in at least 19 of 20;
- a 0.02 sd move at 1,000,000 rows, real but too small to matter, is never flagged.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.loop import profiles
from driftline.monitoring import drift
from driftline.spec import ModelSpec, parse_spec

pytestmark = pytest.mark.statistical

CATEGORIES = np.array(["a", "b", "c", "d"])
SHARES = (0.4, 0.3, 0.2, 0.1)
MOVED_SHARES = (0.3, 0.35, 0.2 + 0.1 / 3, 0.1 + 0.05 / 3)  # "a" loses 10 points, the rest gain in proportion
REFERENCE_ROWS = 200_000
TRIALS = 20
WIDEST = 20


def _spec(features: int) -> ModelSpec:
    half = features // 2
    return parse_spec(
        {
            "name": "synthetic",
            "task": "classification",
            "target": "y",
            "source": {"path": "x.parquet"},
            "features": {
                "numeric": [f"x{i}" for i in range(half)],
                "categorical": [f"c{i}" for i in range(features - half)],
            },
            "estimator": {"kind": "logistic_regression"},
            "metric": {"name": "roc_auc"},
        }
    )


def _frame(
    rng: np.random.Generator,
    rows: int,
    shift: float = 0.0,
    shares: tuple[float, ...] = SHARES,
    width: int = WIDEST,
) -> pd.DataFrame:
    """Independent feature columns and a label; a spec with fewer features reads the first ones."""
    half = width // 2
    data: dict[str, Any] = {f"x{i}": rng.normal(loc=shift if i == 0 else 0.0, size=rows) for i in range(half)}
    for i in range(half):
        data[f"c{i}"] = CATEGORIES[rng.choice(4, size=rows, p=shares if i == 0 else SHARES)]
    data["y"] = rng.integers(0, 2, size=rows)
    return pd.DataFrame(data)


@cache
def _reference() -> Any:
    return profiles.profile_view(_frame(np.random.default_rng(0), REFERENCE_ROWS))


@cache
def _calibration(features: int) -> tuple[ModelSpec, drift.Calibration]:
    spec = _spec(features)
    return spec, drift.calibrate(_reference(), spec, drift.monitored_columns(spec))


@cache
def _views(
    rows: int, seed: int, shift: float = 0.0, shares: tuple[float, ...] = SHARES, width: int = WIDEST
) -> list[Any]:
    # Profiled once for every width: a batch of 2 or 8 features is the first columns of a 20-feature batch, each
    # column drawn independently, so the widths share the costly million-row profiles.
    rng = np.random.default_rng(seed)
    return [profiles.profile_view(_frame(rng, rows, shift, shares, width)) for _ in range(TRIALS)]


def _batches(features: int, rows: int, seed: int, **change: Any) -> list[drift.DriftReport]:
    spec, calibration = _calibration(features)
    return [
        drift.score(view, _reference(), spec, version="v1", batch=str(trial), reference="ref", calibration=calibration)
        for trial, view in enumerate(_views(rows, seed, **change))
    ]


@pytest.mark.parametrize("features", [2, 8, 20])
@pytest.mark.parametrize("rows", [30, 100, 1_000, 10_000, 1_000_000])
def test_same_distribution_batches_raise_at_most_one_false_alarm_in_20(features: int, rows: int) -> None:
    reports = _batches(features, rows, seed=rows)
    alarms = [report.summary() for report in reports if report.detected]
    assert len(alarms) <= 1, alarms
    assert not any(report.undecided() for report in reports)


@pytest.mark.parametrize("features", [2, 8, 20])
@pytest.mark.parametrize(("rows", "shift"), [(30, 1.0), (300, 0.5), (10_000, 0.2)])
def test_a_moved_numeric_column_is_flagged_in_19_of_20(features: int, rows: int, shift: float) -> None:
    reports = _batches(features, rows, seed=7 * rows, shift=shift)
    flagged = sum("x0" in [c.column for c in report.drifted] for report in reports)
    assert flagged >= 19, [r.summary() for r in reports if "x0" not in [c.column for c in r.drifted]]


@pytest.mark.parametrize("features", [2, 8, 20])
def test_a_ten_point_change_in_one_category_share_is_flagged_in_19_of_20_at_1000(features: int) -> None:
    reports = _batches(features, 1_000, seed=3, shares=MOVED_SHARES)
    flagged = sum("c0" in [c.column for c in report.drifted] for report in reports)
    assert flagged >= 19, [r.summary() for r in reports if "c0" not in [c.column for c in r.drifted]]


def test_a_tiny_real_move_is_not_flagged_at_a_million_rows() -> None:
    reports = _batches(2, 1_000_000, seed=99, shift=0.02, width=2)
    assert not any(report.detected for report in reports), [r.summary() for r in reports if r.detected]


def test_the_tabulated_noise_floor_matches_resampling_of_the_reference() -> None:
    """The floor is computed from the reference's shares; resampling the reference must agree with it."""
    spec = _spec(2).model_copy(update={"drift": _spec(2).drift.model_copy(update={"alpha": 0.5})})
    columns = drift.monitored_columns(spec)
    reference_frame = _frame(np.random.default_rng(5), 50_000, width=2)
    reference = profiles.profile_view(reference_frame)
    calibration = drift.calibrate(reference, spec, columns)
    rng = np.random.default_rng(6)
    for rows in (30, 300):
        scores: dict[str, list[float]] = {"x0": [], "c0": []}
        floors: dict[str, float] = {}
        for _ in range(200):
            sample = reference_frame.sample(rows, replace=True, random_state=rng)
            report = drift.score(
                profiles.profile_view(sample),
                reference,
                spec,
                version="v1",
                batch="resample",
                reference="ref",
                calibration=calibration,
            )
            for column in report.columns:
                if column.column in scores:
                    shape = next(t for t in column.tests if t.statistic == "shape")
                    scores[column.column].append(shape.score)
                    floors[column.column] = shape.floor
        levels = {  # each test's share of the batch's false-alarm rate
            "x0": calibration.alpha * (1 - drift.LOCATION_SHARE) / calibration.tests,
            "c0": calibration.alpha / calibration.tests,
        }
        for column, values in scores.items():
            observed = float(np.quantile(values, 1 - levels[column]))
            assert observed == pytest.approx(floors[column], rel=0.25), (rows, column, observed, floors[column])
