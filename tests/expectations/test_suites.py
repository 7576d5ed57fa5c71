"""Each suite in expectations/ passes a good frame and fails a deliberately broken one, naming the column."""

from __future__ import annotations

import pandas as pd
import pytest

from driftline.loop.data import Batch, fingerprint
from driftline.loop.validation import validate
from driftline.spec import load_spec
from tests.conftest import Project


def _batch(frame: pd.DataFrame, origin: str) -> Batch:
    return Batch(origin=origin, frame=frame, fingerprint=fingerprint(frame))


def test_fraud_suite_passes_clean_and_drifted_batches(project: Project, fraud_frame: pd.DataFrame) -> None:
    from driftline.examples.fraud import generate

    spec = load_spec("fraud")
    assert validate(_batch(fraud_frame, "clean"), spec).success
    # Drift is not a data-quality failure: a shifted but valid batch must pass the suite.
    assert validate(_batch(generate(2000, seed=5, drift=True), "drifted"), spec).success


def test_fraud_suite_fails_a_corrupt_batch_naming_columns(project: Project) -> None:
    from driftline.examples.fraud import generate

    report = validate(_batch(generate(2000, seed=5, corrupt=True), "corrupt.parquet"), load_spec("fraud"))
    assert not report.success
    failed = {(outcome.column, outcome.expectation) for outcome in report.failures}
    assert ("amount", "expect_column_values_to_be_between") in failed
    assert ("merchant_category", "expect_column_values_to_not_be_null") in failed
    assert ("country", "expect_column_values_to_be_in_set") in failed
    assert ("hour", "expect_column_values_to_be_between") in failed
    assert "corrupt.parquet" in report.summary()


def test_breast_cancer_suite_passes_the_bundled_data_and_fails_a_broken_copy(project: Project) -> None:
    from driftline.loop.data import load_source

    spec = load_spec("breast_cancer")
    (batch,) = load_source(spec)
    assert validate(batch, spec).success
    broken = batch.frame.copy()
    broken.loc[:9, "mean_radius"] = -1.0
    broken.loc[:4, "target"] = 7
    report = validate(_batch(broken, "broken"), spec)
    assert {outcome.column for outcome in report.failures} == {"mean_radius", "target"}


@pytest.mark.parametrize("name", ["fraud", "breast_cancer"])
def test_every_shipped_suite_loads_whole(project: Project, name: str) -> None:
    import json

    from driftline.loop.validation import load_suite

    spec = load_spec(name)
    entries = json.loads(spec.suite_path.read_text())["expectations"]
    assert len(load_suite(spec.suite_path).expectations) == len(entries)
