"""`driftline check MODEL` reads the head of the source: missing columns, a missing target and wrong types fail it.

No Prefect server is involved: `check` is what a user runs before the first train.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from driftline.cli import app
from driftline.errors import SpecError
from driftline.examples.fraud import generate
from driftline.loop.data import check_head, dtype_problems, read_head
from driftline.spec import load_spec
from tests.conftest import REPO, Project

runner = CliRunner()


def _edit_spec(project: Project, old: str, new: str) -> None:
    spec = project.root / "deployments" / "fraud.toml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new, 1))


def test_check_passes_on_the_shipped_fraud_spec_and_says_what_it_read(project: Project) -> None:
    project.write_fraud_batch("batch-0001.parquet", generate(1500, 1))
    project.write_fraud_batch("batch-0002.parquet", generate(50, 2))

    result = runner.invoke(app, ["check", "fraud"])

    assert result.exit_code == 0, result.output
    first = project.fraud_data / "batch-0001.parquet"
    assert f"data: read 1000 rows of {first}: 10 columns, 9 declared" in result.output  # the head only
    for key, column in [("target", "is_fraud"), ("features.numeric", "amount"), ("timestamp", "event_time")]:
        assert any(line.split()[:2] == [key, column] for line in result.output.splitlines()), result.output


def test_check_fails_on_a_misspelled_target_naming_the_spec_key_and_columns(project: Project) -> None:
    project.write_fraud_batch("batch-0001.parquet", generate(200, 1))
    _edit_spec(project, 'target = "is_fraud"', 'target = "is_frued"')

    result = runner.invoke(app, ["check", "fraud"])

    assert result.exit_code == 1
    assert str(project.root / "deployments" / "fraud.toml") in result.output
    assert "target: column 'is_frued' is not in the data (did you mean 'is_fraud'?)" in result.output
    assert "columns found: transaction_id, amount, merchant_category, country" in result.output
    assert "Traceback" not in result.output


def test_check_fails_on_a_feature_the_data_lacks(project: Project) -> None:
    project.write_fraud_batch("batch-0001.parquet", generate(200, 1).drop(columns=["distance_km"]))

    result = runner.invoke(app, ["check", "fraud"])

    assert result.exit_code == 1
    assert "features.numeric: column 'distance_km' is not in the data" in result.output
    assert "target:" not in result.output and "timestamp:" not in result.output  # only what is wrong


def test_check_fails_on_types_that_do_not_match_the_spec(project: Project) -> None:
    frame = generate(200, 1)
    frame["amount"] = frame["amount"].map(lambda value: f"{value} USD")
    frame["event_time"] = frame["event_time"].astype("int64")  # epoch numbers
    project.write_fraud_batch("batch-0001.parquet", frame)

    result = runner.invoke(app, ["check", "fraud"])

    assert result.exit_code == 1
    assert "features.numeric: column 'amount' must be numeric or bool (got str, e.g. '" in result.output
    assert "declare it in features.categorical" in result.output
    assert "timestamp: column 'event_time' must be a datetime, or text that parses as one (got int64" in result.output


def test_check_fails_when_no_file_matches_the_source_and_skips_data_on_request(project: Project) -> None:
    result = runner.invoke(app, ["check", "fraud"])
    assert result.exit_code == 1
    assert f"{project.fraud_data / '*.parquet'}: no files match (source.path in" in result.output

    assert runner.invoke(app, ["check", "fraud", "--no-data"]).exit_code == 0


def test_check_reads_csv_text_timestamps_as_datetimes(project: Project) -> None:
    project.fraud_data.mkdir(parents=True)
    generate(300, 1).to_csv(project.fraud_data / "batch-0001.csv", index=False)
    _edit_spec(project, 'path = "data/fraud/*.parquet"', 'path = "data/fraud/*.csv"')

    result = runner.invoke(app, ["check", "fraud"])

    assert result.exit_code == 0, result.output
    assert "read 300 rows of" in result.output


def test_a_regression_target_must_be_numeric(project: Project) -> None:
    spec = load_spec("fraud").model_copy(update={"task": "regression"})
    frame = generate(50, 1)
    assert dtype_problems(spec, frame) == []
    labels = frame.assign(is_fraud=frame["is_fraud"].map({0: "no", 1: "yes"}))
    (problem,) = dtype_problems(spec, labels)
    assert (problem.key, problem.column, problem.expected) == ("target", "is_fraud", "numeric for a regression target")
    (as_bool,) = dtype_problems(spec, frame.assign(is_fraud=frame["is_fraud"].astype(bool)))
    assert as_bool.found.startswith("bool")
    # A classification target may be any label type; a column null in every row read is left to the suite.
    assert dtype_problems(load_spec("fraud"), labels) == []
    assert dtype_problems(spec, frame.assign(amount=pd.Series([None] * 50, dtype=object))) == []


def test_check_reads_a_sql_source_through_a_limit(project: Project, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/warehouse.db"
    engine = sa.create_engine(url)
    try:
        generate(1500, 6).to_sql("transactions", engine, index=False)
    finally:
        engine.dispose()
    table = load_spec("fraud", {"source": {"sql": {"url": url, "table": "transactions"}}})
    query = load_spec("fraud", {"source": {"sql": {"url": url, "query": "SELECT * FROM transactions;"}}})

    assert read_head(table, 100).rows == 100
    assert read_head(query).rows == 1000
    # SQLite hands timestamps back as text: they parse, so the spec matches.
    assert check_head(table).origin == "sql:transactions"

    misspelled = load_spec("fraud", {"source": {"sql": {"url": url, "table": "transactions"}}, "target": "fraud"})
    with pytest.raises(SpecError, match="target: column 'fraud' is not in the data"):
        check_head(misspelled)


def test_check_reads_a_bundled_dataset(project: Project) -> None:
    result = runner.invoke(app, ["check", "breast_cancer"])
    assert result.exit_code == 0, result.output
    assert "read 569 rows of sklearn:breast_cancer" in result.output


def test_check_needs_no_prefect_server(project: Project) -> None:
    project.write_fraud_batch("batch-0001.parquet", generate(100, 1))
    code = (
        "import sys\n"
        "from driftline.cli import app\n"
        "try:\n    app(['check', 'fraud'])\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print('PREFECT', 'prefect' in sys.modules, 'EXIT', code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, timeout=180
    )
    assert "PREFECT False EXIT 0" in result.stdout, result.stdout + result.stderr
