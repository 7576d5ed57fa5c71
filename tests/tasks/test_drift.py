"""The drift detector with its defaults: a shift is flagged, a resample of the reference is not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline import drift, profiles
from driftline.spec import ModelSpec, parse_spec

CATEGORIES = ["a", "b", "c", "d"]
BASE_SHARES = [0.25, 0.25, 0.25, 0.25]


def _spec(**drift_section: Any) -> ModelSpec:
    return parse_spec(
        {
            "name": "synthetic",
            "task": "classification",
            "target": "y",
            "source": {"path": "x.parquet"},
            "features": {"numeric": ["x"], "categorical": ["c"]},
            "estimator": {"kind": "logistic_regression"},
            "metric": {"name": "roc_auc"},
            "drift": drift_section,
        }
    )


def _frame(rng: np.random.Generator, rows: int, shift: float = 0.0, shares: list[float] = BASE_SHARES) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(loc=shift, size=rows),
            "c": rng.choice(CATEGORIES, size=rows, p=shares),
            "y": rng.integers(0, 2, size=rows),
        }
    )


@pytest.fixture(scope="module")
def reference() -> Any:
    return profiles.profile_view(_frame(np.random.default_rng(12345), 200_000))


def _report(view: Any, reference: Any, spec: ModelSpec | None = None) -> drift.DriftReport:
    return drift.score(view, reference, spec or _spec(), version="v1", batch="batch", reference="reference")


def _alarms(reference: Any, rows: int, trials: int, seed: int, column: str, **shift: Any) -> int:
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(trials):
        report = _report(profiles.profile_view(_frame(rng, rows, **shift)), reference)
        alarms += any(c.column == column and c.drifted for c in report.columns)
    return alarms


def test_a_shifted_column_is_flagged_and_a_resample_is_not(reference: Any) -> None:
    rng = np.random.default_rng(1)
    clean = _report(profiles.profile_view(_frame(rng, 20_000)), reference)
    assert not clean.detected, clean.summary()
    shifted = _report(profiles.profile_view(_frame(rng, 20_000, shift=0.5)), reference)
    assert [c.column for c in shifted.drifted] == ["x"]
    assert "x" in shifted.summary()


def test_per_column_thresholds_override_the_default(reference: Any) -> None:
    view = profiles.profile_view(_frame(np.random.default_rng(2), 20_000, shift=0.2))
    assert [c.column for c in _report(view, reference).drifted] == ["x"]
    relaxed = _report(view, reference, _spec(columns={"x": 0.5}))
    assert not relaxed.detected
    strict = _report(view, reference, _spec(threshold=0.5, columns={"c": 0.001}))
    assert [c.column for c in strict.drifted] == ["c"]


def test_categorical_drift_counts_missing_values_as_a_category(reference: Any) -> None:
    frame = _frame(np.random.default_rng(3), 20_000)
    frame.loc[: len(frame) // 4, "c"] = None
    report = _report(profiles.profile_view(frame), reference)
    assert "c" in [c.column for c in report.drifted]


def test_html_report_is_self_contained(reference: Any) -> None:
    view = profiles.profile_view(_frame(np.random.default_rng(4), 10_000, shift=0.5))
    page = drift.render_html(_report(view, reference), view, reference)
    assert "Drift detected" in page and "<script" not in page and "http" not in page


@pytest.mark.statistical
@pytest.mark.parametrize("rows", [10_000, 1_000_000])
def test_resamples_of_the_reference_raise_at_most_one_false_alarm_in_20(reference: Any, rows: int) -> None:
    assert _alarms(reference, rows, trials=20, seed=rows, column="x") <= 1
    assert _alarms(reference, rows, trials=20, seed=rows + 1, column="c") <= 1


@pytest.mark.statistical
def test_a_fifth_of_a_standard_deviation_is_flagged_in_19_of_20_at_100k(reference: Any) -> None:
    assert _alarms(reference, 100_000, trials=20, seed=7, column="x", shift=0.2) >= 19


@pytest.mark.statistical
def test_a_ten_point_change_in_one_category_is_flagged_in_19_of_20_at_100k(reference: Any) -> None:
    shares = [0.35, 0.65 / 3, 0.65 / 3, 0.65 / 3]
    assert _alarms(reference, 100_000, trials=20, seed=8, column="c", shares=shares) >= 19
