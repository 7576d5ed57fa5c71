"""A big Parquet batch read lazily: the same fingerprint and rows as a whole read, a profile with what drift needs,
and drift scores equal to the unchunked profile's within the sketch's error (chunks, merged parts, old profiles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline import libs
from driftline.loop import data, profiles
from driftline.monitoring import drift
from driftline.spec import ModelSpec, parse_spec

ROWS = 60_000


def spec() -> ModelSpec:
    return parse_spec(
        {
            "name": "synthetic",
            "task": "classification",
            "target": "y",
            "source": {"path": "x.parquet"},
            "features": {"numeric": ["x", "n"], "categorical": ["c"]},
            "estimator": {"kind": "logistic_regression"},
            "metric": {"name": "roc_auc"},
        }
    )


def frame(seed: int, rows: int = ROWS, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(loc=shift, size=rows),
            "n": rng.poisson(3.0, size=rows).astype("int64"),
            "c": pd.Categorical(rng.choice(["a", "b", "c", "d"], size=rows, p=[0.4, 0.3, 0.2, 0.1])),
            "s": rng.choice(["u", "v"], size=rows),
            "y": (rng.random(rows) < 0.3).astype("int64"),
        }
    )


def write(table: pd.DataFrame, path: Path, row_group: int = 7_000) -> str:
    table.to_parquet(path, index=False, row_group_size=row_group)
    return str(path)


def lazy(path: str) -> data.Batch:
    layout = data.parquet_layout(path)
    digest = data.fingerprint_frames(layout.dtypes, data.parquet_frames(path, layout.columns, chunk_rows=5_000))
    return data.Batch(origin=path, fingerprint=digest, path=path, layout=layout)


def test_a_lazy_batch_has_the_fingerprint_rows_and_values_of_a_whole_read(tmp_path: Path) -> None:
    path = str(tmp_path / "nulls.parquet")
    table = pa.Table.from_pandas(frame(1, 20_000), preserve_index=False)
    # An integer column with one null, in the last row group only: read whole it is float64.
    holes = pa.array([None if i == 19_500 else i for i in range(20_000)], type=pa.int64())
    pq.write_table(table.append_column("k", holes), path, row_group_size=3_000)
    whole = pd.read_parquet(path)

    batch = lazy(path)

    assert batch.lazy and batch.rows == len(whole) and batch.columns == list(whole.columns)
    assert batch.fingerprint == data.fingerprint(whole)
    assert data.fingerprint_parquet(path, data.parquet_layout(path)) == batch.fingerprint  # 7 row groups, threaded
    pd.testing.assert_frame_equal(pd.concat(list(batch.frames(chunk_rows=4_000)), ignore_index=True), whole)
    sample = batch.sample(["x", "k"], 1_000)
    assert len(sample) == 1_000 and sample["k"].dtype == whole["k"].dtype


def test_ordered_map_keeps_the_order_and_runs_only_a_few_items_ahead() -> None:
    import threading
    import time

    lock = threading.Lock()
    started: list[int] = []

    def work(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.001 * (item % 3))  # finishing out of order
        return item * item

    consumed = []
    for result in data.ordered_map(work, list(range(40)), threads=2):
        with lock:
            ahead = len(started) - len(consumed) - 1
        assert ahead <= 2, ahead  # at most `threads` computed beyond the one being consumed
        consumed.append(result)
    assert consumed == [i * i for i in range(40)]


def test_the_monitor_reads_a_big_parquet_file_lazily_and_a_small_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(frame(2, 3_000), tmp_path / "batch.parquet", row_group=1_000)
    monkeypatch.setattr(data, "LAZY_ROWS", 2_000)
    big = data.read_batch(path, lazy=True)
    monkeypatch.setattr(data, "LAZY_ROWS", 5_000)
    small = data.read_batch(path, lazy=True)

    assert big.lazy and not small.lazy
    assert big.fingerprint == small.fingerprint == data.read_batch(path).fingerprint


def test_a_profile_keeps_only_what_drift_reads(tmp_path: Path) -> None:
    view = profiles.profile_view(frame(3, 2_000))

    metrics = {name: set(column.get_metric_names()) for name, column in view.get_columns().items()}

    assert metrics["x"] == {"counts", "distribution"}
    assert metrics["n"] == metrics["y"] == {"counts", "distribution", "frequent_items"}
    assert metrics["c"] == metrics["s"] == {"counts", "distribution", "frequent_items"}
    # Told which columns are categories, integer features keep no frequent items; the label keeps them.
    view = profiles.profile_view(frame(3, 2_000), categorical=profiles.categories(spec()))
    metrics = {name: set(column.get_metric_names()) for name, column in view.get_columns().items()}
    assert metrics["n"] == {"counts", "distribution"}
    assert metrics["y"] == {"counts", "distribution", "frequent_items"}


def scores(target: Any, reference: Any) -> dict[str, float | None]:
    report = drift.score(target, reference, spec(), version="v1", batch="b", reference="r")
    return {column.column: column.score for column in report.columns}


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_chunked_and_merged_profiles_score_as_the_unchunked_profile(tmp_path: Path, shift: float) -> None:
    reference = profiles.profile_view(frame(10, 40_000))
    batch = frame(11, shift=shift)
    path = write(batch, tmp_path / "batch.parquet")
    unchunked = profiles.profile_view(batch, chunk_rows=len(batch))
    categorical = profiles.categories(spec())
    chunked = profiles.profile_parquet(path, chunk_rows=5_000, categorical=categorical)
    halves = [profiles.profile_view(part, categorical=categorical) for part in (batch[: ROWS // 2], batch[ROWS // 2 :])]
    merged = halves[0].merge(halves[1])  # how a traffic window's parts, one per service process, combine

    expected = scores(unchunked, reference)
    for view in (chunked, merged):
        assert profiles.view_rows(view) == ROWS
        counts = view.get_column("c").get_metric("counts")
        assert counts.n.value == ROWS and counts.null.value == 0
        mean = view.get_column("x").get_metric("distribution").mean.value
        assert mean == pytest.approx(batch["x"].mean(), abs=1e-9)
        got = scores(view, reference)
        assert got.keys() == expected.keys()
        for column, score in expected.items():
            # KLL sketches merged from chunks are not bit-identical; their rank error is ~1.3% at k=256.
            assert score is not None and got[column] == pytest.approx(score, abs=0.02), column


def test_an_old_profile_with_every_default_metric_is_still_scored() -> None:
    why = libs.whylogs()
    reference = why.log(pandas=frame(20, 20_000).astype({"c": object})).view()  # whylogs' default resolver
    assert "cardinality" in reference.get_column("x").get_metric_names()

    report = drift.score(
        profiles.profile_view(frame(21, 20_000, shift=1.0)), reference, spec(), version="v1", batch="b", reference="r"
    )

    assert report.detected
    assert {c.column for c in report.columns if c.status == "drift"} >= {"x"}


def test_a_lazy_batch_is_profiled_from_its_file_as_the_same_rows_in_memory(tmp_path: Path) -> None:
    rows = frame(30, 12_000)
    path = write(rows, tmp_path / "batch.parquet", row_group=2_500)
    eager = data.read_batch(path)

    from_file = profiles.profile_batch(lazy(path), spec(), str(tmp_path / "store"), "batch", {"prediction": [0, 1]})
    in_memory = profiles.profile_batch(eager, spec(), str(tmp_path / "other"), "batch", {"prediction": [0, 1]})

    assert from_file.rows == in_memory.rows == 12_000
    assert from_file.columns == in_memory.columns
    mine, theirs = profiles.read_profile(from_file.path), profiles.read_profile(in_memory.path)
    for column in ("x", "n", "c", "y"):
        assert mine.get_column(column).get_metric("counts").n.value == 12_000
    assert drift.category_shares(mine.get_column("c")) == drift.category_shares(theirs.get_column("c"))
    assert mine.get_column("prediction").get_metric("counts").n.value == 2
