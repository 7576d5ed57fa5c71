"""Profiling a batch: one whylogs profile per batch, in the store under its fingerprint, covering the spec's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.loop.profiles import read_profile
from driftline.spec import load_spec
from tasks.profiling import profile_batch
from tests.conftest import Project, make_batch


def test_profile_is_stored_under_the_fingerprint_and_covers_the_spec(
    project: Project, fraud_frame: pd.DataFrame
) -> None:
    spec = load_spec("fraud")
    batch = make_batch(fraud_frame)

    record = profile_batch.fn(spec, batch=batch)

    expected = project.state / "profiles" / "fraud" / "reference" / f"{batch.fingerprint}.bin"
    assert record.path == str(expected)
    assert expected.is_file()
    assert record.rows == len(fraud_frame)
    view = read_profile(record.path)
    # transaction_id is not in the spec; event_time is a datetime, which the profile leaves out.
    declared = set(spec.columns) - {"event_time"}
    assert set(view.get_columns()) == declared
    assert set(record.columns) == declared
    for column in declared:
        assert view.get_column(column).get_metric("counts").n.value == len(fraud_frame)
    mean = view.get_column("amount").get_metric("distribution").mean.value
    assert abs(mean - fraud_frame["amount"].mean()) < 1e-6


def test_profile_kind_selects_the_folder(project: Project, fraud_frame: pd.DataFrame) -> None:
    batch = make_batch(fraud_frame.head(500))

    record = profile_batch.fn(load_spec("fraud"), batch=batch, kind="batch")

    assert record.path == str(project.state / "profiles" / "fraud" / "batch" / f"{batch.fingerprint}.bin")
    assert read_profile(record.path).get_column("hour").get_metric("counts").n.value == 500


def test_a_categorical_column_with_missing_values_is_profiled(project: Project, fraud_frame: pd.DataFrame) -> None:
    frame = fraud_frame.head(800).copy()
    frame["merchant_category"] = frame["merchant_category"].astype("category")
    frame.loc[frame.index[::10], "merchant_category"] = np.nan
    assert isinstance(frame["merchant_category"].dtype, pd.CategoricalDtype)

    record = profile_batch.fn(load_spec("fraud"), batch=make_batch(frame))

    counts = read_profile(record.path).get_column("merchant_category").get_metric("counts")
    assert counts.n.value == 800
    assert counts.null.value == 80


def test_predictions_of_a_sample_are_profiled_beside_every_row(project: Project) -> None:
    from driftline.examples.fraud import generate
    from driftline.monitoring.predictions import PREDICTION_SAMPLE
    from tasks.monitoring import predict_batch

    class Constant:
        def predict(self, rows: pd.DataFrame) -> list[int]:
            return [1] * len(rows)

    spec = load_spec("fraud")
    batch = make_batch(generate(PREDICTION_SAMPLE + 500, 3))
    predictions = predict_batch.fn(spec, model=Constant(), batch=batch)
    assert predictions is not None and len(predictions) == PREDICTION_SAMPLE
    record = profile_batch.fn(spec, batch=batch, kind="batch", predictions=predictions)
    columns = read_profile(record.path).get_columns()
    assert int(columns["prediction"].get_metric("counts").n.value) == PREDICTION_SAMPLE
    assert int(columns["amount"].get_metric("counts").n.value) == batch.rows == record.rows
