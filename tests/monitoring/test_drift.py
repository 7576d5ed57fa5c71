"""The drift detector: calibrated verdicts per column, kinds of drift, and statuses that are never "ok" by default.

Error rates over repeated trials are in test_drift_calibration.py (marker ``statistical``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.loop import profiles
from driftline.monitoring import drift
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


def _frame(
    rng: np.random.Generator, rows: int, shift: float = 0.0, shares: list[float] = BASE_SHARES, positive: float = 0.5
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(loc=shift, size=rows),
            "c": rng.choice(CATEGORIES, size=rows, p=shares),
            "y": (rng.random(rows) < positive).astype("int64"),
        }
    )


@pytest.fixture(scope="module")
def reference() -> Any:
    return profiles.profile_view(_frame(np.random.default_rng(12345), 50_000))


def _report(frame: pd.DataFrame, reference: Any, spec: ModelSpec | None = None) -> drift.DriftReport:
    view = profiles.profile_view(frame)
    return drift.score(view, reference, spec or _spec(), version="v1", batch="batch", reference="reference")


def _status(report: drift.DriftReport, column: str) -> str:
    return next(c.status for c in report.columns if c.column == column)


def test_a_moved_column_is_flagged_and_a_resample_is_not(reference: Any) -> None:
    rng = np.random.default_rng(1)
    clean = _report(_frame(rng, 5_000), reference)
    assert not clean.detected and not clean.undecided(), clean.summary()
    assert {c.status for c in clean.columns} == {"ok"}
    moved = _report(_frame(rng, 5_000, shift=0.5), reference)
    assert [c.column for c in moved.drifted] == ["x"]
    assert "x" in moved.summary() and moved.kinds() == ["feature"]


def test_the_threshold_is_the_noise_floor_plus_the_effect_size(reference: Any) -> None:
    small = _report(_frame(np.random.default_rng(2), 40), reference)
    large = _report(_frame(np.random.default_rng(2), 20_000), reference)
    for report in (small, large):
        for column in report.columns:
            for test in column.tests:
                assert test.threshold == pytest.approx(math.hypot(test.floor, column.effect))
    floor = {r.rows: max(t.floor for c in r.columns for t in c.tests) for r in (small, large)}
    assert floor[40] > 5 * floor[20_000]  # the noise floor shrinks as the batch grows


def test_a_30_row_sample_of_the_reference_is_not_flagged_but_a_whole_sd_move_is(reference: Any) -> None:
    rng = np.random.default_rng(3)
    assert not _report(_frame(rng, 30), reference).detected
    assert _status(_report(_frame(rng, 30, shift=1.5), reference), "x") == "drift"


def test_per_column_effect_sizes_override_the_default(reference: Any) -> None:
    frame = _frame(np.random.default_rng(4), 20_000, shift=0.2)
    assert [c.column for c in _report(frame, reference).drifted] == ["x"]
    relaxed = _report(frame, reference, _spec(columns={"x": 0.5}))
    assert not relaxed.detected
    assert next(c.effect for c in relaxed.columns if c.column == "x") == 0.5


def test_missing_values_count_as_a_category_and_as_a_bucket_of_numbers(reference: Any) -> None:
    frame = _frame(np.random.default_rng(5), 5_000)
    frame.loc[: len(frame) // 4, "c"] = None
    frame.loc[: len(frame) // 4, "x"] = np.nan
    report = _report(frame, reference)
    assert {c.column for c in report.drifted} == {"c", "x"}


def test_an_all_null_numeric_column_is_unscorable_not_ok(reference: Any) -> None:
    frame = _frame(np.random.default_rng(6), 500).assign(x=np.nan)
    report = _report(frame, reference)
    column = next(c for c in report.columns if c.column == "x")
    assert column.status == "unscorable" and not column.drifted and "missing" in column.note
    assert [c.column for c in report.undecided()] == ["x"]
    assert "x (unscorable)" in report.summary()
    assert report.as_dict()["statuses"]["unscorable"] == 1


def test_numbers_that_are_not_numbers_are_unscorable(reference: Any) -> None:
    frame = _frame(np.random.default_rng(7), 500).assign(x=lambda f: f["x"].map(lambda v: f"{v:.2f} EUR"))
    assert _status(_report(frame, reference), "x") == "unscorable"


def test_a_column_absent_from_the_batch_is_unscorable(reference: Any) -> None:
    frame = _frame(np.random.default_rng(8), 500).drop(columns=["y"])
    report = _report(frame, reference)
    assert _status(report, "y") == "unscorable"


def test_too_few_rows_is_insufficient_data_for_every_column(reference: Any) -> None:
    report = _report(_frame(np.random.default_rng(9), 10, shift=3.0), reference)
    assert {c.status for c in report.columns} == {"insufficient_data"}
    assert not report.detected
    assert "drift.min_rows is 20" in report.columns[0].note
    lowered = _report(_frame(np.random.default_rng(9), 10, shift=3.0), reference, _spec(min_rows=5))
    assert _status(lowered, "x") == "drift"


def test_target_drift_is_told_apart_from_feature_drift(reference: Any) -> None:
    report = _report(_frame(np.random.default_rng(10), 2_000, positive=0.8), reference)
    assert [(c.column, c.role) for c in report.drifted] == [("y", "target")]
    assert report.kinds() == ["target"]


def test_prediction_drift_is_scored_when_the_reference_has_predictions() -> None:
    rng = np.random.default_rng(11)
    reference = profiles.profile_view(_frame(rng, 20_000).assign(prediction=rng.integers(0, 2, 20_000)))
    batch = _frame(rng, 2_000).assign(prediction=(rng.random(2_000) < 0.9).astype(int))
    report = _report(batch, reference)
    assert [(c.column, c.role) for c in report.drifted] == [("prediction", "prediction")]
    assert report.kinds() == ["prediction"]


def test_the_calibration_is_kept_as_json_and_refitted_when_the_spec_changes(reference: Any) -> None:
    spec = _spec()
    columns = drift.monitored_columns(spec)
    calibration = drift.calibrate(reference, spec, columns)
    again = drift.Calibration.from_json(calibration.to_json())
    assert again == calibration and again.fits(spec, columns)
    assert not again.fits(_spec(alpha=0.05), columns)
    frame = _frame(np.random.default_rng(12), 300, shift=0.5)
    view = profiles.profile_view(frame)
    stored = drift.score(view, reference, spec, version="v1", batch="b", reference="r", calibration=again)
    fresh = drift.score(view, reference, spec, version="v1", batch="b", reference="r")
    assert stored.columns == fresh.columns


def test_stored_verdicts_can_be_rejudged_under_another_effect_size(reference: Any) -> None:
    report = _report(_frame(np.random.default_rng(13), 20_000, shift=0.1), reference)
    stored = drift.DriftReport.from_dict(report.as_dict())
    assert stored == report
    x = next(c for c in stored.columns if c.column == "x")
    assert x.status == "drift"
    assert drift.rejudge(x, 0.2) == "ok"
    assert drift.rejudge(x, 0.001) == "drift"
    assert drift.rejudge(replace(x, status="unscorable"), 0.001) == "unscorable"


def test_html_report_is_self_contained_and_shows_every_status(reference: Any) -> None:
    frame = _frame(np.random.default_rng(14), 5_000, shift=0.5).assign(c=None)
    report = _report(frame, reference)
    view = profiles.profile_view(frame)
    page = drift.render_html(report, view, reference)
    assert "Drift detected" in page and "<script" not in page and "http" not in page
    assert "noise floor" in page and "<td>drift</td>" in page and "feature drift" in page


def test_unlabeled_traffic_leaves_the_target_out_rather_than_calling_it_unscorable(reference: Any) -> None:
    view = profiles.profile_view(_frame(np.random.default_rng(15), 500).drop(columns=["y"]))
    report = drift.score(view, reference, _spec(), version="v1", batch="window", reference="r", labeled=False)
    assert [c.column for c in report.columns] == ["x", "c"] and not report.undecided()
