"""Validating a batch: clean data passes, bad data fails with the column and rule named, a bad suite is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from driftline.errors import SpecError
from driftline.examples.fraud import generate
from driftline.loop.validation import suite_digest
from driftline.spec import load_spec
from tasks.validation import validate_batch
from tests.conftest import Project, make_batch


def test_a_clean_batch_passes_every_expectation(project: Project, fraud_frame: pd.DataFrame) -> None:
    spec = load_spec("fraud")

    report = validate_batch.fn(spec, batch=make_batch(fraud_frame, "clean.parquet"))

    assert report.success, report.summary()
    entries = json.loads(spec.suite_path.read_text())["expectations"]
    assert len(report.outcomes) == len(entries)
    assert report.origin == "clean.parquet"
    assert report.suite_digest == suite_digest(spec.suite_path)


def test_a_corrupt_batch_fails_naming_column_and_expectation(project: Project) -> None:
    frame = generate(600, seed=8, corrupt=True)

    report = validate_batch.fn(load_spec("fraud"), batch=make_batch(frame, "corrupt.parquet"))

    assert not report.success
    failed = {(outcome.column, outcome.expectation): outcome for outcome in report.failures}
    assert set(failed) == {
        ("amount", "expect_column_values_to_be_between"),
        ("merchant_category", "expect_column_values_to_not_be_null"),
        ("country", "expect_column_values_to_be_in_set"),
        ("hour", "expect_column_values_to_be_between"),
    }
    # 600 // 20 rows were broken per column.
    assert failed[("hour", "expect_column_values_to_be_between")].observed.startswith("30 of 600 values unexpected")
    assert "column 'hour'" in report.summary()


def test_a_batch_missing_a_declared_column_fails_without_raising(project: Project, fraud_frame: pd.DataFrame) -> None:
    frame = fraud_frame.drop(columns=["distance_km"])

    report = validate_batch.fn(load_spec("fraud"), batch=make_batch(frame, "short.parquet"))

    assert not report.success
    failed = {(outcome.column, outcome.expectation) for outcome in report.failures}
    assert ("distance_km", "driftline_column_declared_in_spec_exists") in failed
    assert ("distance_km", "expect_column_to_exist") in failed
    assert {column for column, _ in failed} == {"distance_km"}
    assert "failed: ok" not in report.summary()
    assert all(o.observed.startswith(("column missing", "the column is missing")) for o in report.failures)


def test_text_where_a_number_is_expected_is_said_in_plain_words(project: Project, fraud_frame: pd.DataFrame) -> None:
    frame = fraud_frame.assign(amount=fraud_frame["amount"].astype(str))

    report = validate_batch.fn(load_spec("fraud"), batch=make_batch(frame, "text.parquet"))

    (failure,) = report.failures
    assert (failure.column, failure.expectation) == ("amount", "expect_column_values_to_be_between")
    assert failure.observed.startswith("text where a number is expected")
    assert "must either be None or of the same type" not in report.summary()


def _write_suite(project: Project, text: str) -> Path:
    path = project.root / "expectations" / "fraud.json"
    path.write_text(text)
    return path


def test_a_misspelled_expectation_type_raises_naming_the_entry(project: Project, fraud_frame: pd.DataFrame) -> None:
    path = project.root / "expectations" / "fraud.json"
    suite = json.loads(path.read_text())
    assert suite["expectations"][11]["type"] == "expect_column_values_to_be_between"
    suite["expectations"][11]["type"] = "expect_column_values_to_be_betwen"
    _write_suite(project, json.dumps(suite))

    with pytest.raises(SpecError, match=r"expectations\[11\]") as raised:
        validate_batch.fn(load_spec("fraud"), batch=make_batch(fraud_frame))
    assert str(path) in str(raised.value)
    assert "expect_column_values_to_be_betwen" in str(raised.value)


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[]", '{"name": "fraud"}', '{"name": "fraud", "expectations": []}'],
    ids=["empty", "invalid", "list", "no-expectations", "empty-expectations"],
)
def test_a_suite_that_is_not_a_suite_raises_naming_the_file(
    project: Project, fraud_frame: pd.DataFrame, text: str
) -> None:
    path = _write_suite(project, text)

    with pytest.raises(SpecError) as raised:
        validate_batch.fn(load_spec("fraud"), batch=make_batch(fraud_frame))
    assert str(path) in str(raised.value)


def test_a_missing_suite_raises_naming_the_file(project: Project, fraud_frame: pd.DataFrame) -> None:
    path = project.root / "expectations" / "fraud.json"
    path.unlink()

    with pytest.raises(SpecError, match="not found") as raised:
        validate_batch.fn(load_spec("fraud"), batch=make_batch(fraud_frame))
    assert str(path) in str(raised.value)
