"""Loading, fingerprinting, checking and quarantining batches: content hashes, every source kind, no lost bytes.

A spec's source file is never moved (a failing one is copied); only landing files move; absent columns are spec
errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from driftline.errors import DataError, SpecError
from driftline.examples.fraud import generate
from driftline.loop.data import Batch, fingerprint
from driftline.loop.quarantine import kept_message
from driftline.spec import load_spec
from tasks.data import check_columns, load_batches, quarantine_batch
from tests.conftest import REPO, Project


def test_fingerprint_is_the_same_in_another_process() -> None:
    code = (
        "from driftline.loop.data import fingerprint\n"
        "from driftline.examples.fraud import generate\n"
        "print(fingerprint(generate(500, seed=3)))\n"
    )
    # A different string-hash seed in the child: the fingerprint must not depend on Python's hash().
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, env=env, timeout=120
    )
    assert child.stdout.strip() == fingerprint(generate(500, seed=3))


@pytest.mark.parametrize(
    ("column", "row", "change"),
    [
        ("amount", 17, lambda value: value + 0.01),
        ("country", 3, lambda value: "NG" if value != "NG" else "US"),
        ("hour", 250, lambda value: (value + 1) % 24),
        ("event_time", 42, lambda value: value + pd.Timedelta(seconds=1)),
    ],
)
def test_fingerprint_changes_when_one_cell_changes(column: str, row: int, change: Any) -> None:
    frame = generate(300, seed=1)
    changed = frame.copy()
    assert fingerprint(changed) == fingerprint(frame)
    changed.loc[row, column] = change(frame.loc[row, column])
    assert changed.dtypes.equals(frame.dtypes)
    assert fingerprint(changed) != fingerprint(frame)


def test_fingerprint_ignores_the_file_format_when_values_and_dtypes_match(tmp_path: Path) -> None:
    frame = generate(300, seed=2)
    frame.to_parquet(tmp_path / "batch.parquet", index=False)
    frame.to_csv(tmp_path / "batch.csv", index=False)
    from_parquet = pd.read_parquet(tmp_path / "batch.parquet")
    from_csv = pd.read_csv(tmp_path / "batch.csv")

    # CSV has no timestamp type: the column comes back as text, and that is a different frame.
    assert fingerprint(from_csv) != fingerprint(from_parquet)
    from_csv["event_time"] = pd.to_datetime(from_csv["event_time"]).astype(frame["event_time"].dtype)
    assert from_csv.dtypes.equals(from_parquet.dtypes)
    assert fingerprint(from_csv) == fingerprint(from_parquet) == fingerprint(frame)


def test_load_batches_gives_one_batch_per_file_in_sorted_order(project: Project) -> None:
    frames = {name: generate(rows, seed=seed) for name, rows, seed in [("b-0003", 150, 3), ("b-0001", 120, 1)]}
    frames["b-0002"] = generate(130, seed=2)
    for name, frame in frames.items():  # written out of order
        project.write_fraud_batch(f"{name}.parquet", frame)
    (project.fraud_data / "notes.txt").write_text("not a batch")

    batches = load_batches.fn(load_spec("fraud"))

    names = sorted(frames)
    assert [Path(batch.origin).name for batch in batches] == [f"{name}.parquet" for name in names]
    for batch, name in zip(batches, names, strict=True):
        assert batch.path == batch.origin
        assert batch.rows == len(frames[name])
        assert batch.columns == list(frames[name].columns)
        assert batch.fingerprint == fingerprint(frames[name])
        pd.testing.assert_frame_equal(batch.frame, frames[name])
    assert len({batch.fingerprint for batch in batches}) == 3


def test_load_batches_raises_naming_a_path_with_no_files(project: Project, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "*.parquet"
    with pytest.raises(DataError, match="no files match") as raised:
        load_batches.fn(load_spec("fraud"), location=str(missing))
    assert str(missing) in str(raised.value)

    # The spec's own source, resolved against the project, is named the same way.
    with pytest.raises(DataError) as raised:
        load_batches.fn(load_spec("fraud"))
    assert str(project.root / "data" / "fraud" / "*.parquet") in str(raised.value)


def test_load_batches_reads_a_csv_source(project: Project, tmp_path: Path) -> None:
    frame = generate(200, seed=4)
    path = tmp_path / "incoming" / "batch.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)

    (batch,) = load_batches.fn(load_spec("fraud"), location=str(tmp_path / "incoming" / "*.csv"))

    assert batch.origin == str(path)
    assert batch.rows == 200
    assert batch.columns == list(frame.columns)
    assert batch.fingerprint == fingerprint(batch.frame)
    numeric = ["amount", "card_present", "hour", "distance_km", "tx_count_24h", "is_fraud"]
    pd.testing.assert_frame_equal(batch.frame[numeric], frame[numeric])
    assert batch.frame["country"].tolist() == frame["country"].tolist()


def test_load_batches_reads_a_compressed_tsv_source(project: Project, tmp_path: Path) -> None:
    frame = generate(120, seed=5)
    frame.to_csv(tmp_path / "batch.tsv.gz", sep="\t", index=False)

    (batch,) = load_batches.fn(load_spec("fraud"), location=str(tmp_path / "batch.tsv.gz"))

    assert batch.columns == list(frame.columns)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(url)
    try:
        generate(250, seed=6).to_sql("transactions", engine, index=False)
    finally:
        engine.dispose()
    return url


def test_load_batches_reads_a_sql_table(project: Project, sqlite_url: str) -> None:
    spec = load_spec("fraud", {"source": {"sql": {"url": sqlite_url, "table": "transactions"}}})

    (batch,) = load_batches.fn(spec)

    frame = generate(250, seed=6)
    assert batch.origin == "sql:transactions"
    assert batch.path is None
    assert batch.rows == 250
    assert batch.columns == list(frame.columns)
    assert batch.fingerprint == fingerprint(batch.frame)
    pd.testing.assert_series_equal(batch.frame["amount"], frame["amount"])
    assert batch.frame["merchant_category"].tolist() == frame["merchant_category"].tolist()


def test_load_batches_reads_a_sql_query(project: Project, sqlite_url: str) -> None:
    query = "SELECT * FROM transactions WHERE is_fraud = 1"
    spec = load_spec("fraud", {"source": {"sql": {"url": sqlite_url, "query": query}}})

    (batch,) = load_batches.fn(spec)

    assert batch.origin == "sql:query"
    assert batch.rows == int(generate(250, seed=6)["is_fraud"].sum()) > 0
    assert set(batch.frame["is_fraud"]) == {1}


def _failing(project: Project, name: str = "batch-0007.parquet", seed: int = 7) -> tuple[Path, Batch, Any]:
    from tasks.validation import validate_batch

    path = project.write_fraud_batch(name, generate(400, seed=seed, corrupt=True))
    spec = load_spec("fraud")
    (batch,) = load_batches.fn(spec, location=str(path))
    report = validate_batch.fn(spec, batch=batch)
    assert not report.success
    return path, batch, report


def test_a_failing_source_file_is_copied_byte_identical_and_left_in_place(project: Project) -> None:
    path, batch, report = _failing(project)
    arrived = path.read_bytes()
    spec = load_spec("fraud")

    kept = quarantine_batch.fn(spec, batch=batch, report=report)

    assert path.read_bytes() == arrived  # the user's file: still there, unchanged
    assert kept.read_bytes() == arrived
    assert kept.name == path.name
    assert kept.parent.parent == project.state / "quarantine" / "fraud"
    assert batch.fingerprint[:12] in kept.parent.name
    assert not path.samefile(kept)  # a real copy: editing the source later cannot change the evidence
    evidence = json.loads((kept.parent / "validation.json").read_text())
    assert evidence["origin"] == evidence["origin_path"] == str(path)
    assert evidence["source_kind"] == "source" and evidence["moved"] is False
    assert evidence["sha256"] == hashlib.sha256(arrived).hexdigest()
    assert evidence["fingerprint"] == batch.fingerprint
    assert evidence["rows"] == 400
    assert evidence["validation"]["success"] is False
    failed = {(o["column"], o["expectation"]) for o in evidence["validation"]["outcomes"] if not o["success"]}
    assert ("hour", "expect_column_values_to_be_between") in failed
    assert ("country", "expect_column_values_to_be_in_set") in failed
    # The next run still finds the source where the spec says it is.
    assert [b.origin for b in load_batches.fn(spec)] == [str(path)]
    assert "left in place" in kept_message(batch, kept, "source", "fraud")


def test_a_failing_landing_file_is_moved_out_of_the_landing_area(project: Project) -> None:
    from tasks.validation import validate_batch

    landing = project.fraud_data / "landing"
    landing.mkdir(parents=True)
    path = landing / "incoming.parquet"
    generate(300, seed=8, corrupt=True).to_parquet(path, index=False)
    arrived = path.read_bytes()
    spec = load_spec("fraud")
    (batch,) = load_batches.fn(spec, location=spec.landing)
    report = validate_batch.fn(spec, batch=batch)

    kept = quarantine_batch.fn(spec, batch=batch, report=report, where="landing")

    assert not path.exists()
    assert kept.read_bytes() == arrived
    evidence = json.loads((kept.parent / "validation.json").read_text())
    assert (evidence["source_kind"], evidence["origin_path"], evidence["moved"]) == ("landing", str(path), True)
    assert evidence["sha256"] == hashlib.sha256(arrived).hexdigest()
    assert "driftline replay fraud" in kept_message(batch, kept, "landing", "fraud")


def test_a_redelivered_landing_file_of_the_same_name_never_overwrites_the_first(project: Project) -> None:
    from tasks.validation import validate_batch

    landing = project.fraud_data / "landing"
    landing.mkdir(parents=True)
    spec = load_spec("fraud")
    kept = []
    for seed in (9, 10):  # same name, different content
        path = landing / "daily.parquet"
        generate(200, seed=seed, corrupt=True).to_parquet(path, index=False)
        arrived = path.read_bytes()
        (batch,) = load_batches.fn(spec, location=str(path))
        kept.append(
            (
                quarantine_batch.fn(spec, batch=batch, report=validate_batch.fn(spec, batch=batch), where="landing"),
                arrived,
            )
        )

    (first, first_bytes), (second, second_bytes) = kept
    assert first.parent != second.parent and first.name == second.name == "daily.parquet"
    assert first.read_bytes() == first_bytes and second.read_bytes() == second_bytes


def test_an_unchanged_failing_source_is_kept_once_and_a_changed_one_again(project: Project) -> None:
    path, batch, report = _failing(project)
    spec = load_spec("fraud")
    first = quarantine_batch.fn(spec, batch=batch, report=report)

    again = quarantine_batch.fn(spec, batch=batch, report=report)  # the nightly run on the same unfixed file

    assert again == first
    assert len(list((project.state / "quarantine" / "fraud").iterdir())) == 1

    first_bytes = first.read_bytes()
    generate(400, seed=70, corrupt=True).to_parquet(path, index=False)  # the same name, new bytes
    (changed,) = load_batches.fn(spec, location=str(path))
    from tasks.validation import validate_batch

    second = quarantine_batch.fn(spec, batch=changed, report=validate_batch.fn(spec, batch=changed))
    assert second.parent != first.parent
    assert first.read_bytes() == first_bytes and second.read_bytes() == path.read_bytes()


def test_a_misspelled_target_is_a_spec_error_naming_the_file_key_and_columns(project: Project) -> None:
    project.write_fraud_batch("batch-0001.parquet", generate(200, seed=1))
    project.write_fraud_batch("batch-0002.parquet", generate(200, seed=2))
    spec = load_spec("fraud", {"target": "is_frad"})
    batches = load_batches.fn(spec)

    with pytest.raises(SpecError) as raised:
        check_columns.fn(spec, batches=batches)

    message = str(raised.value)
    assert str(project.root / "deployments" / "fraud.toml") in message
    assert "target: column 'is_frad' is not in the data (did you mean 'is_fraud'?)" in message
    assert "none of the 2 batches" in message
    assert "columns found: transaction_id, amount, merchant_category" in message
    assert not (project.state / "quarantine").exists()  # the spec is wrong, not a batch: nothing quarantined


def test_every_missing_declared_column_is_named_with_its_key(project: Project) -> None:
    frame = generate(200, seed=3).drop(columns=["distance_km", "country", "event_time"])
    project.write_fraud_batch("batch-0001.parquet", frame)
    spec = load_spec("fraud")

    with pytest.raises(SpecError) as raised:
        check_columns.fn(spec, batches=load_batches.fn(spec))

    message = str(raised.value)
    assert "features.numeric: column 'distance_km' is not in the data" in message
    assert "features.categorical: column 'country' is not in the data" in message
    assert "timestamp: column 'event_time' is not in the data" in message
    assert "target:" not in message


def test_a_column_missing_from_one_batch_only_is_that_batch_s_problem(project: Project) -> None:
    from tasks.validation import validate_batch

    project.write_fraud_batch("batch-0001.parquet", generate(200, seed=1))
    project.write_fraud_batch("batch-0002.parquet", generate(200, seed=2).drop(columns=["amount"]))
    spec = load_spec("fraud")
    batches = load_batches.fn(spec)

    check_columns.fn(spec, batches=batches)  # not a spec error: one batch has the column

    reports = [validate_batch.fn(spec, batch=batch) for batch in batches]
    assert [report.success for report in reports] == [True, False]
    assert "amount" in {o.column for o in reports[1].failures}


def test_quarantine_writes_a_non_file_batch_as_parquet(project: Project) -> None:
    from driftline.loop.validation import ExpectationOutcome, ValidationReport

    spec = load_spec("breast_cancer")
    (batch,) = load_batches.fn(spec)
    assert batch.path is None
    failure = ExpectationOutcome("expect_column_values_to_be_between", "mean_radius", False, "3 of 569 unexpected")
    report = ValidationReport(batch.origin, batch.fingerprint, "breast_cancer.json", "0" * 64, (failure,))

    kept = quarantine_batch.fn(spec, batch=batch, report=report)

    assert kept.name == "batch.parquet"
    record = json.loads((kept.parent / "validation.json").read_text())
    assert (record["source_kind"], record["origin_path"], record["moved"]) == ("source", None, False)
    assert kept.parent.parent == project.state / "quarantine" / "breast_cancer"
    written = pd.read_parquet(kept)
    pd.testing.assert_frame_equal(written, batch.frame)
    assert fingerprint(written) == batch.fingerprint
    evidence = json.loads((kept.parent / "validation.json").read_text())
    assert evidence["origin"] == "sklearn:breast_cancer"
    assert evidence["validation"]["outcomes"][0]["column"] == "mean_radius"


def test_archiving_a_redelivered_duplicate_never_replaces_the_earlier_one(project: Project) -> None:
    from tasks.monitoring import archive_batch

    landing = project.fraud_data / "landing"
    landing.mkdir(parents=True)
    spec = load_spec("fraud")
    kept = []
    for compression in ("snappy", "gzip"):  # the same rows delivered twice: same fingerprint, different bytes
        path = landing / "daily.parquet"
        generate(100, seed=4).to_parquet(path, index=False, compression=compression)
        arrived = path.read_bytes()
        (batch,) = load_batches.fn(spec, location=str(path))
        kept.append((Path(archive_batch.fn(spec, batch=batch, duplicate=True)), arrived))
        assert not path.exists()

    (first, first_bytes), (second, second_bytes) = kept
    assert first != second and first.parent == second.parent
    assert first.read_bytes() == first_bytes and second.read_bytes() == second_bytes


def test_uploads_in_progress_and_hidden_files_wait_in_the_landing_area(project: Project) -> None:
    from tasks.monitoring import find_new_batches

    spec = load_spec("fraud")
    landing = Path(spec.landing).parent
    landing.mkdir(parents=True, exist_ok=True)
    names = ["b.parquet", "a.parquet", "c.parquet.tmp", "d.parquet.part", "e.PART", ".f.parquet", "g.csv.partial"]
    for name in names:
        (landing / name).write_bytes(b"x")

    found = find_new_batches.fn(spec)

    assert [Path(entry.path).name for entry in found if entry.state == "ready"] == ["a.parquet", "b.parquet"]
    assert {Path(entry.path).name for entry in found if entry.state == "waiting"} == set(names) - {
        "a.parquet",
        "b.parquet",
    }
    assert all((landing / name).exists() for name in names)  # nothing moved: they are read once complete
