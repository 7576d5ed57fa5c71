"""whylogs profiles and the profile store. All of driftline's whylogs use goes through this module.

whylogs 1.6.4 is effectively unmaintained: it needs a numpy-2 shim (``driftline.libs.numpy_compat``), crashes
on categorical columns holding NaN, and spends most of its time on datetime columns while yielding only counts.
So frames are prepared here first: categoricals become plain values and datetime columns are left out.

What a profile keeps (``DriftlineResolver``) is what driftline reads back, and nothing else: ``counts`` (rows and
missing values: every column), ``distribution`` (the KLL quantile sketch, mean and variance: numeric drift, the
report's quantiles) and ``frequent_items`` (category shares: categorical drift). whylogs' default also keeps
``types``, ``cardinality`` (HLL) and ``ints`` on every column, and nothing of driftline reads them.

Measured on this machine (whylogs 1.6.4, 200,000 rows, one column, seconds; best of 2):

======================  ==========  ==========  ==========
metric alone             float       int         string
======================  ==========  ==========  ==========
counts                   0.280       0.000       0.001
types                    0.300       0.000       0.001
distribution (KLL)       0.277       0.020       0.001
frequent_items           0.349       0.022       0.058
cardinality (HLL)        0.247       0.006       0.040
ints                     0.227       0.003       0.001
default (all of them)    0.304       0.054       0.104
======================  ==========  ==========  ==========

A float column costs ~0.25 s per 200,000 rows whatever the metrics: whylogs counts infinities with a Python call
per value (``PreprocessedColumn._pandas_split``). ``_vectorised_float_split`` replaces that one step with numpy
(same counts), which is most of the speed-up; the resolver takes off the rest (HLL and frequent items on
integers and strings). Big batches are profiled in chunks into one profile (flat memory); a big Parquet file is
read chunk by chunk, only the profiled columns (``profile_parquet``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from driftline import libs
from driftline.errors import StoreError
from driftline.libs import lazy_module

if TYPE_CHECKING:
    import pandas as pd

    from driftline.loop.data import Batch
    from driftline.spec import ModelSpec
else:
    pd = lazy_module("pandas")

# Rows per chunk: 256k rows of the fraud example's columns is ~20 MB of frame, whylogs' copies included.
CHUNK_ROWS = 262_144


@dataclass(frozen=True)
class ProfileRecord:
    """A stored whylogs profile: where it is, what it covers."""

    path: str
    rows: int
    columns: tuple[str, ...]


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the columns whylogs profiles well: categoricals as plain values, datetimes left out.

    A categorical of strings becomes pandas' ``str`` dtype (whylogs' fast path for text); any other categorical
    becomes objects.
    """
    keep = [c for c, t in frame.dtypes.items() if not pd.api.types.is_datetime64_any_dtype(t)]
    prepared = frame[keep]
    categorical = {c: t for c, t in prepared.dtypes.items() if isinstance(t, pd.CategoricalDtype)}
    if categorical:
        prepared = prepared.astype(
            {c: "str" if pd.api.types.is_string_dtype(t.categories.dtype) else object for c, t in categorical.items()}
        )
    return prepared


def whylogs() -> Any:
    """whylogs, with driftline's fix for its slow float preprocessing applied once."""
    why = libs.whylogs()
    _vectorise_float_split()
    return why


@cache
def _vectorise_float_split() -> None:
    import numpy as np
    from pandas.api import types as pdc
    from whylogs.core.preprocessing import PreprocessedColumn

    original = PreprocessedColumn._pandas_split

    def split(self: Any, series: pd.Series, parse_numeric_string: bool = False) -> None:
        if series is None or not pdc.is_float_dtype(series.dtype):
            original(self, series, parse_numeric_string)
            return None
        # whylogs' own float branch, with its per-value Python calls (isnull and isinf) done by numpy.
        values = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
        self.null_count = int(missing.sum())
        self.nan_count = self.null_count
        floats = values[~missing]
        self.inf_count = int(np.isinf(floats).sum())
        self.numpy.floats = floats
        return None

    PreprocessedColumn._pandas_split = split


@cache
def resolver(categorical: frozenset[str] | None = None) -> Any:
    """The metrics driftline reads, per whylogs type: counts everywhere; the KLL distribution on numbers;
    frequent items on strings and objects, and on integers that are categories (labels, coded categories):
    the ``categorical`` columns, or every integer column when they are not known."""
    whylogs()
    from whylogs.core.datatypes import Fractional, Integral
    from whylogs.core.metrics import StandardMetric
    from whylogs.core.resolvers import Resolver

    class DriftlineResolver(Resolver):  # type: ignore[misc]  # whylogs has no type information
        def resolve(self, name: str, why_type: Any, column_schema: Any) -> dict[str, Any]:
            metrics = [StandardMetric.counts]
            if isinstance(why_type, Fractional):
                metrics.append(StandardMetric.distribution)
            elif isinstance(why_type, Integral):
                metrics.append(StandardMetric.distribution)
                if categorical is None or name in categorical:
                    metrics.append(StandardMetric.frequent_items)
            else:  # strings, and objects (which may hold Decimals)
                metrics += [StandardMetric.distribution, StandardMetric.frequent_items]
            return {metric.name: metric.zero(column_schema.cfg) for metric in metrics}

    return DriftlineResolver()


def new_profile(dataset_timestamp: Any = None, categorical: frozenset[str] | None = None) -> Any:
    """An empty whylogs profile that tracks the metrics driftline reads (see ``resolver``)."""
    whylogs()
    from whylogs.core import DatasetProfile, DatasetSchema

    schema = DatasetSchema(resolvers=resolver(categorical))
    return DatasetProfile(schema=schema, dataset_timestamp=dataset_timestamp)


def chunks(frame: pd.DataFrame, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The frame in slices of at most ``rows`` rows (the frame itself when it is that small)."""
    if len(frame) <= rows:
        yield frame
        return
    for start in range(0, len(frame), rows):
        yield frame.iloc[start : start + rows]


def profile_view(frame: pd.DataFrame, chunk_rows: int = CHUNK_ROWS, categorical: frozenset[str] | None = None) -> Any:
    """Profile a frame with whylogs, chunk by chunk into one profile, and return the profile view."""
    profile = new_profile(categorical=categorical)
    for chunk in chunks(prepare(frame), chunk_rows):
        profile.track(pandas=chunk)
    return profile.view()


def profile_frames(
    frames: Iterator[pd.DataFrame] | Sequence[pd.DataFrame], categorical: frozenset[str] | None = None
) -> Any:
    """Profile a stream of frames (chunks of one batch) into one profile view; each chunk is dropped once tracked."""
    profile = new_profile(categorical=categorical)
    for frame in frames:
        profile.track(pandas=prepare(frame))
    return profile.view()


def profile_parquet(
    path: str,
    columns: Sequence[str] | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    categorical: frozenset[str] | None = None,
) -> Any:
    """Profile a Parquet file's ``columns`` (all by default) chunk by chunk, reading only those columns: memory stays
    flat in the file's rows.

    One thread in this process. Measured on 2 cores at 10M rows (W2): a process pool whose workers import whylogs
    was slower (8.7-9.5 s against 6.8-7.1 s) and held a copy of the libraries per worker; two threads were no
    faster (whylogs' column loop holds the GIL). Spreading a batch over machines is Dask's work, not a pool's.
    """
    from driftline.loop import data

    layout = data.parquet_layout(path)
    wanted = [c for c in (columns if columns is not None else layout.columns) if c in layout.columns]
    return profile_frames(data.parquet_frames(path, wanted, chunk_rows=chunk_rows, layout=layout), categorical)


def view_rows(view: Any) -> int:
    """How many rows a profile view has seen."""
    for column in view.get_columns().values():
        counts = column.get_metric("counts")
        if counts is not None:
            return int(counts.n.value)
    return 0


def profile_path(store: str, model: str, kind: str, name: str) -> str:
    """Where a profile lives in the store: ``<store>/<model>/<kind>/<name>.bin`` (kind: reference, batch, window)."""
    return f"{store.rstrip('/')}/{model}/{kind}/{name}.bin"


def write_profile(view: Any, path: str) -> None:
    import fsspec

    try:
        with fsspec.open(path, "wb", auto_mkdir=True) as handle:
            handle.write(view.serialize())
    except OSError as error:
        raise StoreError(f"{path}: cannot write profile: {error}") from error


def read_profile(path: str) -> Any:
    import fsspec

    whylogs()
    from whylogs.core import DatasetProfileView

    try:
        with fsspec.open(path, "rb") as handle:
            return DatasetProfileView.deserialize(handle.read())
    except FileNotFoundError:
        raise StoreError(f"{path}: profile not found") from None


def store_profile(frame: pd.DataFrame, store: str, model: str, kind: str, name: str) -> ProfileRecord:
    """Profile a frame and write it to the profile store."""
    view = profile_view(frame)
    path = profile_path(store, model, kind, name)
    write_profile(view, path)
    return ProfileRecord(path=path, rows=len(frame), columns=tuple(str(c) for c in view.get_columns()))


def categories(spec: ModelSpec) -> frozenset[str]:
    """The spec's columns scored as categories: frequent items are kept for these even when they hold integers."""
    labels = {spec.target, "prediction"} if spec.task == "classification" else set()
    return frozenset({*spec.features.categorical, *labels})


def profile_batch(
    batch: Batch, spec: ModelSpec, store: str, kind: str, extra: dict[str, list[Any]] | None = None
) -> ProfileRecord:
    """Profile the spec's columns of a batch into ``<store>/<model>/<kind>/<fingerprint>.bin``.

    A lazy batch (a big Parquet file) is profiled from the file, only the spec's columns, chunk by chunk.
    ``extra`` columns (a model's predictions) may cover a sample of the rows: they are profiled apart and merged,
    so each column keeps its own count.
    """
    columns = [c for c in spec.columns if c in batch.columns]
    categorical = categories(spec)
    if batch.lazy and batch.path is not None:
        view = profile_parquet(batch.path, columns, categorical=categorical)
    else:
        view = profile_view(batch.frame[columns], categorical=categorical)
    if extra is not None:
        view = view.merge(profile_view(pd.DataFrame(extra)))
    path = profile_path(store, spec.name, kind, batch.fingerprint)
    write_profile(view, path)
    return ProfileRecord(path=path, rows=batch.rows, columns=tuple(str(c) for c in view.get_columns()))
