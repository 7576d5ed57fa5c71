"""Validating a big Parquet batch chunk by chunk gives the report whole-frame GX validation gives.

Every expectation type of expectations/*.json, passing and failing, with ``mostly``; chunks smaller than the row
groups and across their boundaries, so counts, unexpected examples and aggregates really are combined.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.loop.data import Batch, fingerprint, parquet_layout
from driftline.loop.validation import ValidationReport, Verdict, _in_suite_order, _run, chunked, load_suite, validate
from driftline.spec import load_spec
from tests.conftest import Project

ROOT = Path(__file__).resolve().parents[2]


def lazy_batch(frame: pd.DataFrame, path: Path, row_group: int = 400) -> Batch:
    frame.to_parquet(path, index=False, row_group_size=row_group)
    layout = parquet_layout(str(path))
    return Batch(origin=str(path), fingerprint=fingerprint(frame), path=str(path), layout=layout)


def whole_batch(frame: pd.DataFrame, path: Path) -> Batch:
    read = pd.read_parquet(path)
    return Batch(origin=str(path), frame=read, fingerprint=fingerprint(read), path=str(path))


def number(observed: str) -> float:
    return float(observed.removeprefix("observed ").removeprefix("np.float64(").removesuffix(")"))


def assert_same(chunked_report: ValidationReport, whole_report: ValidationReport) -> None:
    assert len(chunked_report.outcomes) == len(whole_report.outcomes)
    for mine, theirs in zip(chunked_report.outcomes, whole_report.outcomes, strict=True):
        assert (mine.expectation, mine.column, mine.success, mine.kwargs) == (
            theirs.expectation,
            theirs.column,
            theirs.success,
            theirs.kwargs,
        )
        if mine.expectation == "expect_column_mean_to_be_between" and mine.observed.startswith("observed "):
            # Summing by chunks rounds differently in the last digits.
            assert number(mine.observed) == pytest.approx(number(theirs.observed), rel=1e-12)
        else:
            assert mine.observed == theirs.observed
    assert chunked_report.success == whole_report.success


def test_the_fraud_suite_passes_a_clean_batch_as_whole_validation_does(project: Project, tmp_path: Path) -> None:
    spec = load_spec("fraud")
    frame = generate(2500, seed=3)
    lazy = lazy_batch(frame, tmp_path / "clean.parquet")

    report = validate(lazy, spec, chunk_rows=350)

    assert report.success, report.summary()
    assert_same(report, validate(whole_batch(frame, tmp_path / "clean.parquet"), spec))


def test_the_fraud_suite_fails_a_corrupt_batch_as_whole_validation_does(project: Project, tmp_path: Path) -> None:
    spec = load_spec("fraud")
    frame = generate(2500, seed=8, corrupt=True)
    frame.loc[frame.index[-800:], "is_fraud"] = 1  # the target's mean leaves its bounds
    lazy = lazy_batch(frame, tmp_path / "corrupt.parquet")

    report = validate(lazy, spec, chunk_rows=350)

    assert not report.success
    failed = {outcome.expectation for outcome in report.failures}
    assert {"expect_column_values_to_be_between", "expect_column_values_to_be_in_set"} <= failed
    assert "expect_column_values_to_not_be_null" in failed
    assert "expect_column_mean_to_be_between" in failed
    assert_same(report, validate(whole_batch(frame, tmp_path / "corrupt.parquet"), spec))


def test_too_few_rows_and_a_missing_column_are_judged_as_whole_validation_does(
    project: Project, tmp_path: Path
) -> None:
    spec = load_spec("fraud")
    frame = generate(90, seed=4).drop(columns=["distance_km"])
    lazy = lazy_batch(frame, tmp_path / "short.parquet", row_group=20)

    report = validate(lazy, spec, chunk_rows=15)

    failed = {(outcome.expectation, outcome.column) for outcome in report.failures}
    assert ("expect_table_row_count_to_be_between", None) in failed
    assert ("expect_column_to_exist", "distance_km") in failed
    assert_same(report, validate(whole_batch(frame, tmp_path / "short.parquet"), spec))


def mostly_suite(path: Path) -> Path:
    """Every expectation type of the project's suites, with ``mostly`` just met and just missed, and min/max."""
    kinds = set()
    for suite in (ROOT / "expectations").glob("*.json"):
        kinds |= {entry["type"] for entry in json.loads(suite.read_text())["expectations"]}
    entries = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100, "max_value": 5000}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "amount"}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "hour", "min_value": 0, "max_value": 20, "mostly": 0.8},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "hour", "min_value": 0, "max_value": 20, "mostly": 0.9},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "country", "value_set": ["US", "GB"], "mostly": 0.6},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "country", "value_set": ["US", "GB"], "mostly": 0.8},
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "merchant_category", "mostly": 0.85}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "merchant_category", "mostly": 0.95}},
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "amount", "min_value": 1.0, "max_value": 1000.0},
        },
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "amount", "min_value": 1000.0, "strict_min": True},
        },
        {"type": "expect_column_min_to_be_between", "kwargs": {"column": "distance_km", "min_value": 0.0}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "distance_km", "max_value": 10.0}},
        {
            "type": "expect_column_median_to_be_between",
            "kwargs": {"column": "amount", "min_value": 1.0, "max_value": 1e6},
        },
    ]
    assert kinds <= {entry["type"] for entry in entries}, "a suite uses an expectation type this test does not cover"
    path.write_text(json.dumps({"name": "mostly", "expectations": entries}))
    return path


def test_every_expectation_type_with_mostly_combines_as_whole_validation(tmp_path: Path) -> None:
    frame = generate(3000, seed=5)
    frame["merchant_category"] = frame["merchant_category"].astype(object)
    frame.loc[np.random.default_rng(1).choice(3000, 300, replace=False), "merchant_category"] = None  # 10% missing
    suite = load_suite(mostly_suite(tmp_path / "mostly.json"))
    lazy = lazy_batch(frame, tmp_path / "mostly.parquet")

    verdicts, _ = chunked(lazy, suite, chunk_rows=350)
    results = _run(pd.read_parquet(tmp_path / "mostly.parquet"), suite).results
    whole = _in_suite_order(suite, [Verdict.of(item) for item in results])

    assert [v.success for v in verdicts] == [v.success for v in whole]
    assert [v.success for v in verdicts] == [
        True,
        True,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
    ]
    for mine, theirs in zip(verdicts, whole, strict=True):
        for key in ("element_count", "unexpected_count", "missing_count", "partial_unexpected_list"):
            assert mine.result.get(key) == theirs.result.get(key), (mine.expectation, key)
        if isinstance(theirs.result.get("observed_value"), float):
            assert mine.result["observed_value"] == pytest.approx(theirs.result["observed_value"], rel=1e-12)
        else:
            assert mine.result.get("observed_value") == theirs.result.get("observed_value")
