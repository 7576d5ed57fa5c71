"""Loading batches, fingerprinting them, checking them against the spec, and quarantining the ones that fail.

A batch is one arriving file (or one SQL read, or one bundled dataset). Its fingerprint hashes the content, not
the bytes on disk, so it is stable across processes and file formats and changes when any cell changes.

The user's files are theirs: a file named by a spec's source is never moved or changed. A failing source file is
copied byte-identical to quarantine and left in place; only a file in a monitor's landing area (driftline's inbox)
is moved. A column the spec declares that no batch has is the spec's fault (SpecError), not the data's.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from driftline.errors import DataError, SpecError, UnreadableFile
from driftline.libs import lazy_module
from driftline.spec import ModelSpec, Source

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

# A Parquet file with more rows than this is read lazily where the caller allows it (the monitor): chunk by chunk,
# only the columns a step needs, so a 10M-row batch never sits in memory whole.
LAZY_ROWS = 500_000
# Rows per chunk when a batch is read or hashed in chunks (~20 MB of the fraud example's columns).
CHUNK_ROWS = 262_144

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def ordered_map(work: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
    """``map(work, items)`` on up to ``threads`` threads: results in the items' order, at most ``threads`` of them
    computed ahead of the one being consumed, so memory stays bounded however many items there are.

    Threads, not processes: reading Parquet (pyarrow) and hashing (numpy) release the GIL, a thread costs nothing to
    start, and nothing is pickled (a process pool whose workers import the libraries was slower on 2 cores, W2).
    """
    if threads <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="driftline-read") as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass(frozen=True)
class ParquetLayout:
    """What a Parquet file's footer says: rows, row groups, and the columns and dtypes a whole read would give."""

    rows: int
    row_groups: tuple[int, ...]
    dtypes: tuple[tuple[str, str], ...]  # (column, pandas dtype of a whole-file read), in the file's order

    @property
    def columns(self) -> list[str]:
        return [column for column, _ in self.dtypes]


@dataclass(frozen=True, init=False)
class Batch:
    """One batch of rows and where it came from.

    A big Parquet file read for the monitor is lazy (``layout`` is set): the steps that can (fingerprint,
    validation, profile, the prediction sample) read it chunk by chunk through ``frames``, and ``frame`` reads the
    whole file only if a step asks for it.
    """

    origin: str
    fingerprint: str
    path: str | None  # set when the batch is one file: quarantine keeps its bytes, not a re-encoding
    layout: ParquetLayout | None
    _frame: pd.DataFrame | None

    def __init__(
        self,
        origin: str,
        frame: pd.DataFrame | None = None,
        fingerprint: str = "",
        path: str | None = None,
        *,
        layout: ParquetLayout | None = None,
    ) -> None:
        if frame is None and (layout is None or path is None):
            raise ValueError(f"{origin}: a batch needs its rows, or a Parquet file's path and layout")
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "fingerprint", fingerprint)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "_frame", frame)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return (self.origin, self.fingerprint, self.path) == (other.origin, other.fingerprint, other.path)

    def __hash__(self) -> int:
        return hash((self.origin, self.fingerprint, self.path))

    def __repr__(self) -> str:
        return f"Batch(origin={self.origin!r}, fingerprint={self.fingerprint!r}, path={self.path!r})"

    @property
    def frame(self) -> pd.DataFrame:
        """Every row in memory (a lazy batch reads its whole file here, once)."""
        if self._frame is None:
            assert self.path is not None
            object.__setattr__(self, "_frame", read_file(self.path, "parquet"))
        assert self._frame is not None
        return self._frame

    @property
    def lazy(self) -> bool:
        """Whether the rows are still in the file (read chunk by chunk by ``frames``)."""
        return self._frame is None

    @property
    def rows(self) -> int:
        return self.layout.rows if self._frame is None and self.layout is not None else len(self.frame)

    @property
    def columns(self) -> list[str]:
        if self._frame is None and self.layout is not None:
            return self.layout.columns
        return [str(column) for column in self.frame.columns]

    def frames(self, columns: Sequence[str] | None = None, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The rows chunk by chunk, only ``columns`` (those the batch has; all by default)."""
        wanted = [c for c in (columns if columns is not None else self.columns) if c in self.columns]
        if self._frame is None:
            assert self.path is not None
            yield from parquet_frames(self.path, wanted, chunk_rows=chunk_rows)
            return
        frame = self._frame[wanted]
        for start in range(0, max(len(frame), 1), chunk_rows):
            yield frame.iloc[start : start + chunk_rows]

    def sample(self, columns: Sequence[str], rows: int, seed: int = 0) -> pd.DataFrame:
        """``columns`` of at most ``rows`` rows, a seeded sample when the batch has more (a lazy batch: read chunk by
        chunk, only the sampled rows kept). A missing column raises KeyError, as indexing a frame does."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise KeyError(f"{self.origin}: no column {', '.join(map(repr, missing))}")
        if self._frame is not None:
            frame = self._frame[list(columns)]
            return frame.sample(rows, random_state=seed) if len(frame) > rows else frame
        import numpy as np

        total = self.rows
        if total <= rows:
            return pd.concat(list(self.frames(columns)), ignore_index=True)
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=rows, replace=False))
        kept, offset = [], 0
        for chunk in self.frames(columns):
            here = chosen[(chosen >= offset) & (chosen < offset + len(chunk))] - offset
            kept.append(chunk.iloc[here])
            offset += len(chunk)
        return pd.concat(kept, ignore_index=True)


def fingerprint(frame: pd.DataFrame) -> str:
    """Hash column names, dtypes and every cell: stable across processes, different if one name or cell differs."""
    return _digest(list(frame.dtypes.items()), [_row_hashes(frame)])


def fingerprint_frames(dtypes: Sequence[tuple[Any, Any]], frames: Iterable[pd.DataFrame]) -> str:
    """``fingerprint`` of the frame these chunks make (in order), without holding it whole."""
    return _digest(dtypes, map(_row_hashes, frames))


def fingerprint_parquet(path: str, layout: ParquetLayout) -> str:
    """``fingerprint`` of a whole read of a Parquet file, its row groups read and hashed on the process's cores."""

    def row_group(group: int) -> bytes:
        frames = parquet_frames(path, layout.columns, row_groups=[group], layout=layout)
        return b"".join(map(_row_hashes, frames))

    return _digest(layout.dtypes, ordered_map(row_group, layout.row_groups, min(cores(), 4)))


def _digest(dtypes: Sequence[tuple[Any, Any]], row_hashes: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([[_column_label(c), str(t)] for c, t in dtypes]).encode())
    for hashes in row_hashes:  # in row order: the bytes are the same however the rows were chunked
        digest.update(hashes)
    return digest.hexdigest()


def _row_hashes(frame: pd.DataFrame) -> bytes:
    # hash_pandas_object uses a fixed key, so the row hashes are the same in every process.
    return bytes(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())


def parquet_layout(path: str) -> ParquetLayout:
    """Read a Parquet file's footer: its rows, row groups, and the dtypes ``pd.read_parquet`` would give.

    An integer (or boolean) column holding nulls anywhere reads as float64 (object) when read whole, so chunks are
    cast to the whole file's dtypes: the same file hashes and validates the same whichever way it is read.
    """
    import fsspec
    import numpy as np
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        meta = parquet.metadata
        empty = parquet.schema_arrow.empty_table().to_pandas()
        dtypes = []
        for column, dtype in empty.dtypes.items():
            name = str(column)
            if isinstance(dtype, np.dtype) and dtype.kind in "iub" and _has_nulls(parquet, name):
                dtype = np.dtype("float64") if dtype.kind in "iu" else np.dtype(object)
            dtypes.append((name, str(dtype)))
        return ParquetLayout(meta.num_rows, tuple(range(meta.num_row_groups)), tuple(dtypes))


def _has_nulls(parquet: Any, column: str) -> bool:
    """Whether a column holds a null in any row group: from the footer's statistics, else by reading the column."""
    index = parquet.schema_arrow.get_field_index(column)
    for group in range(parquet.metadata.num_row_groups):
        statistics = parquet.metadata.row_group(group).column(index).statistics
        if statistics is not None and statistics.has_null_count:
            if statistics.null_count:
                return True
            continue
        if parquet.read_row_group(group, columns=[column]).column(0).null_count:
            return True
    return False


def parquet_frames(
    path: str,
    columns: Sequence[str],
    *,
    chunk_rows: int = CHUNK_ROWS,
    row_groups: Sequence[int] | None = None,
    layout: ParquetLayout | None = None,
) -> Iterator[pd.DataFrame]:
    """Read ``columns`` of a Parquet file (of ``row_groups``, all by default) as frames of at most ``chunk_rows``
    rows, each with the dtype a whole-file read gives its column."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    layout = layout or parquet_layout(path)
    dtypes = {column: dtype for column, dtype in layout.dtypes if column in columns}
    with fsspec.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        schema = pa.schema([parquet.schema_arrow.field(column) for column in dtypes])
        for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=list(dtypes), row_groups=row_groups):
            frame = pa.Table.from_batches([record_batch], schema=schema).to_pandas()
            cast = {c: t for c, t in dtypes.items() if str(frame[c].dtype) != t and t in ("float64", "object")}
            yield frame.astype(cast) if cast else frame


def _column_label(label: Any) -> str | list[str]:
    """A column label as JSON that tells it from every other label: a name as itself, anything else with its type.

    ``str()`` alone made column ``1`` and column ``"1"`` (or a tuple and its text) the same,
    so renaming one into the other kept the fingerprint. Names (the usual case) hash as they always did.
    """
    if isinstance(label, str):
        return str(label)
    return [type(label).__qualname__, str(label)]


class Reason(StrEnum):
    """Why a file went to quarantine or was skipped (``invalid``: it was read and failed the suite)."""

    UNREADABLE = "unreadable"
    WRONG_ENCODING = "wrong_encoding"
    UNKNOWN_FORMAT = "unknown_format"
    EMPTY = "empty"
    INVALID = "invalid"
    NOT_REGULAR = "not_regular"  # a symbolic link in a landing area, kept as a link


def _format_of(path: str, declared: str | None) -> str:
    if declared:
        return declared
    name = path.lower().removesuffix(".gz").removesuffix(".zst")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise SpecError(f"{path}: cannot tell the format from the extension; set source.format to parquet or csv")


def read_file(path: str, declared_format: str | None = None) -> pd.DataFrame:
    """Read one Parquet or CSV file from a local path or fsspec URL.

    Content that cannot be read raises UnreadableFile with the reason in plain words and the reader's own message.
    """
    try:
        kind = _format_of(path, declared_format)
    except SpecError:
        suffix = Path(path).suffix or "no extension"
        raise UnreadableFile(
            path,
            Reason.UNKNOWN_FORMAT,
            f"{path}: unknown format ({suffix}): batches are .parquet, .pq, .csv or .tsv (optionally .gz); "
            "set source.format to read every file as one format",
        ) from None
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        tabs = path.lower().removesuffix(".gz").removesuffix(".zst").endswith(".tsv")
        frame = pd.read_csv(path, sep="\t" if tabs else ",")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # pandas/pyarrow raise many types for a damaged file; name the file once
        raise _unreadable(path, kind, error) from error
    _check_header(path, frame, tabs)
    return frame


def read_batch(path: str, declared_format: str | None = None, *, lazy: bool = False) -> Batch:
    """Read one file as a batch; UnreadableFile if it is empty (0 bytes, or no rows) or cannot be read.

    ``lazy``: a Parquet file of more than ``LAZY_ROWS`` rows stays in the file (see ``Batch``); only its footer is
    read here, and its fingerprint is hashed chunk by chunk (the same as a whole read's).
    """
    if not _remote(path) and _local(path).is_file() and _local(path).stat().st_size == 0:
        raise UnreadableFile(path, Reason.EMPTY, f"{path}: the file is empty (0 bytes)")
    if lazy and _is_parquet(path, declared_format):
        batch = _lazy_batch(path)
        if batch is not None:
            return batch
    frame = read_file(path, declared_format)
    if frame.empty:
        what = "a header and no rows" if len(frame.columns) else "no columns and no rows"
        raise UnreadableFile(path, Reason.EMPTY, f"{path}: nothing to score: {what}")
    return Batch(origin=path, frame=frame, fingerprint=fingerprint(frame), path=path)


def _is_parquet(path: str, declared_format: str | None) -> bool:
    try:
        return _format_of(path, declared_format) == "parquet"
    except SpecError:
        return False


def _lazy_batch(path: str) -> Batch | None:
    """A lazy batch of a big Parquet file; None if it is small (read whole) or its footer cannot be read (the whole
    read then says why)."""
    try:
        layout = parquet_layout(path)
        if layout.rows <= LAZY_ROWS:
            return None
        digest = fingerprint_parquet(path, layout)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # a damaged file: the whole read raises the same error, named
        raise _unreadable(path, "parquet", error) from error
    return Batch(origin=path, fingerprint=digest, path=path, layout=layout)


def _check_header(path: str, frame: pd.DataFrame, tabs: bool) -> None:
    """A CSV header that names a column twice: pandas would quietly rename the second (amount.1)."""
    import fsspec

    with fsspec.open(path, "rt", encoding="utf-8", compression="infer", newline="") as handle:
        import csv

        header = next(csv.reader(handle, delimiter="\t" if tabs else ","), [])
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise UnreadableFile(
            path, Reason.UNREADABLE, f"{path}: the header names {', '.join(map(repr, twice))} more than once"
        )


def _unreadable(path: str, kind: str, error: BaseException) -> UnreadableFile:
    """The reader's error in plain words, with the library's own message after it."""
    detail = f"{type(error).__name__}: {error}".strip()
    if isinstance(error, UnicodeDecodeError):
        byte = error.object[error.start : error.start + 1].hex()
        return UnreadableFile(
            path,
            Reason.WRONG_ENCODING,
            f"{path}: not UTF-8 text (byte 0x{byte} at offset {error.start}); save the file as UTF-8",
        )
    if isinstance(error, pd.errors.EmptyDataError):
        return UnreadableFile(path, Reason.EMPTY, f"{path}: nothing to read: no header and no rows")
    if kind == "parquet":
        what = "not a readable Parquet file (damaged or cut short)"
        return UnreadableFile(path, Reason.UNREADABLE, f"{path}: {what}: {detail}")
    if isinstance(error, (EOFError, OSError)) or "gzip" in detail.lower() or "compress" in detail.lower():
        what = "cannot decompress it (the name says compressed)"
        return UnreadableFile(path, Reason.UNREADABLE, f"{path}: {what}: {detail}")
    return UnreadableFile(path, Reason.UNREADABLE, f"{path}: the CSV does not parse: {detail}")


def expand(location: str) -> list[str]:
    """List the files a path, glob or fsspec URL names, sorted so runs see batches in the same order."""
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(location)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    files = sorted(path for path in paths if fs.isfile(path))
    if protocol in ("file", "local"):
        return files
    return [fs.unstrip_protocol(path) for path in files]


# Names an upload in progress carries by convention (rsync, browsers, most copy tools write to these first, then
# rename); hidden files are never batches. driftline/loop/landing.py sorts a landing area's entries.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


def load_source(
    spec: ModelSpec, location: str | None = None, report: Callable[[str], object] | None = None
) -> list[Batch]:
    """Load every batch of the spec's source (or of ``location``, which replaces a file source for one run).

    A file that cannot be read fails the load, naming every such file and its reason (``source.on_unreadable =
    "fail"``, the default), or is skipped and named through ``report`` (``"skip"``). It is never moved.
    """
    source = spec.source if location is None else Source(path=location, format=spec.source.format)
    if source.path is not None:
        pattern = spec.resolve(source.path)
        files = expand(pattern)
        if not files:
            raise DataError(f"{pattern}: no files match (source.path in {spec.label})")
        batches: list[Batch] = []
        unreadable: list[UnreadableFile] = []
        for path in files:
            try:
                batches.append(read_batch(path, source.format))
            except UnreadableFile as error:
                unreadable.append(error)
        if unreadable:
            _unreadable_sources(spec, pattern, unreadable, batches, report)
        return batches
    if source.sql is not None:
        return [_sql_batch(source)]
    return [_sklearn_batch(str(source.sklearn), spec)]


def _unreadable_sources(
    spec: ModelSpec,
    pattern: str,
    unreadable: list[UnreadableFile],
    batches: list[Batch],
    report: Callable[[str], object] | None,
) -> None:
    """Fail on the source's unreadable files, or name each as skipped (``source.on_unreadable``)."""
    lines = [f"  {error} [{error.reason}]" for error in unreadable]
    if spec.source.on_unreadable == "skip" and batches:
        for line in lines:
            (report or _warn)(f'{spec.label}: skipped (source.on_unreadable = "skip"; the file stays):{line}')
        return
    why = (
        "no file of it can be read"
        if spec.source.on_unreadable == "skip"
        else 'source.on_unreadable = "fail"; "skip" trains on the rest'
    )
    message = "\n".join(
        [f"{spec.label}: {len(unreadable)} of the source's files cannot be read ({pattern}; {why}):", *lines]
    )
    raise UnreadableFile(pattern, unreadable[0].reason, message + "\n  the files are left in place: fix or remove them")


def _warn(message: str) -> None:
    import logging

    logging.getLogger("driftline").warning(message)


def _sql_batch(source: Source, limit: int | None = None) -> Batch:
    import sqlalchemy as sa

    assert source.sql is not None
    sql = source.sql
    engine = sa.create_engine(sql.resolved_url())
    try:
        with engine.connect() as connection:
            if limit is not None:
                # The dialect writes the LIMIT (or TOP, FETCH FIRST), so only the head crosses the network.
                query = str(sql.query).strip().rstrip(";")
                rows = sa.table(sql.table) if sql.table is not None else sa.text(f"({query}) AS driftline_head")
                statement = sa.select(sa.text("*")).select_from(rows).limit(limit)
                frame = pd.read_sql_query(statement, connection)
            elif sql.table is not None:
                frame = pd.read_sql_table(sql.table, connection)
            else:
                frame = pd.read_sql_query(sa.text(str(sql.query)), connection)
    except Exception as error:  # driver errors vary by database; name the source, keep the cause chained
        raise DataError(f"sql:{sql.table or 'query'}: cannot read: {error}") from error
    finally:
        engine.dispose()
    return Batch(origin=f"sql:{sql.table or 'query'}", frame=frame, fingerprint=fingerprint(frame))


def _sklearn_batch(name: str, spec: ModelSpec) -> Batch:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}", None)
    if loader is None:
        raise SpecError(f"{spec.label}: source.sklearn: no bundled scikit-learn dataset '{name}'")
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns=lambda column: str(column).replace(" ", "_"))
    return Batch(origin=f"sklearn:{name}", frame=frame, fingerprint=fingerprint(frame))


def combine(batches: list[Batch]) -> Batch:
    """Concatenate batches into one training batch with its own fingerprint."""
    if len(batches) == 1:
        return batches[0]
    frame = pd.concat([batch.frame for batch in batches], ignore_index=True)
    origin = f"{len(batches)} batches: {batches[0].origin} … {batches[-1].origin}"
    return Batch(origin=origin, frame=frame, fingerprint=fingerprint(frame))


# -- the spec against the data: a declared column that no batch has is a spec error ---------------------------

HEAD_ROWS = 1000  # enough rows to tell a column's type, few enough that `driftline check` reads any source fast


@dataclass(frozen=True)
class ColumnProblem:
    """One declared column that the data lacks or holds with the wrong type."""

    key: str  # the spec key that declares it: target, features.numeric, features.categorical, timestamp
    column: str
    expected: str
    found: str
    suggestion: str | None = None  # the closest column name found, for a missing column
    hint: str | None = None  # what to change, for a wrong type

    def describe(self) -> str:
        if self.expected == "present":
            close = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
            return f"{self.key}: column '{self.column}' is not in the data{close}"
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.key}: column '{self.column}' must be {self.expected} (got {self.found}){hint}"


@dataclass(frozen=True)
class HeadCheck:
    """What ``check_head`` read from the head of a model's source and found as declared."""

    origin: str
    rows: int
    columns: tuple[str, ...]
    checked: tuple[tuple[str, str, str], ...]  # (spec key, column, dtype found) for every declared column

    def summary(self) -> str:
        return f"read {self.rows} rows of {self.origin}: {len(self.columns)} columns, {len(self.checked)} declared"


def declared_columns(spec: ModelSpec) -> list[tuple[str, str]]:
    """Every column the spec declares, with the key that declares it."""
    keyed = [("target", spec.target)]
    keyed += [("features.numeric", column) for column in spec.features.numeric]
    keyed += [("features.categorical", column) for column in spec.features.categorical]
    if spec.timestamp:
        keyed.append(("timestamp", spec.timestamp))
    return keyed


def missing_columns(spec: ModelSpec, found: Sequence[str]) -> list[ColumnProblem]:
    """The declared columns absent from ``found``, each with the closest column name as a suggestion."""
    present = set(found)
    problems = []
    for key, column in declared_columns(spec):
        if column in present:
            continue
        close = difflib.get_close_matches(column, list(found), n=1, cutoff=0.6)
        problems.append(ColumnProblem(key, column, "present", "no such column", close[0] if close else None))
    return problems


def check_columns(spec: ModelSpec, batches: Sequence[Batch]) -> None:
    """Raise SpecError if a column the spec declares is absent from every batch: the spec is wrong, not the data.

    A column missing from some batches only is the data's problem: those batches fail validation and are
    quarantined as usual. Call this before validating, so a misspelled target never quarantines a good batch.
    """
    if not batches:
        return
    found: dict[str, None] = {}  # every column of any batch, first-seen order
    for batch in batches:
        found.update(dict.fromkeys(batch.columns))
    columns = list(found)
    problems = missing_columns(spec, columns)
    if problems:
        where = (
            batches[0].origin if len(batches) == 1 else f"none of the {len(batches)} batches ({batches[0].origin} …)"
        )
        raise SpecError(
            _problems_message(spec, f"the spec declares columns the data lacks (in {where})", problems, columns)
        )


def _problems_message(spec: ModelSpec, what: str, problems: list[ColumnProblem], found: Sequence[str]) -> str:
    lines = [f"{spec.label}: {what}:", *(f"  {problem.describe()}" for problem in problems)]
    if any(problem.expected == "present" for problem in problems):
        lines.append(f"  columns found: {', '.join(found)}")
    lines.append(
        f"  fix the spec's key (or the data, if it lost the column upstream), then check: driftline check {spec.name}"
    )
    return "\n".join(lines)


def dtype_problems(spec: ModelSpec, frame: pd.DataFrame) -> list[ColumnProblem]:
    """The declared columns whose values cannot be what the spec says they are.

    Numeric features must be numeric or bool, a regression target numeric, a timestamp a datetime (or text that
    parses as one). A column that is null in every row read says nothing about its type and is left to the suite.
    """
    problems = []
    for key, column in declared_columns(spec):
        if column not in frame.columns:
            continue
        values = frame[column]
        present = values.dropna()
        if present.empty:
            continue
        if key == "features.numeric" and not _numeric(values):
            hint = "declare it in features.categorical if it holds categories"
            problems.append(ColumnProblem(key, column, "numeric or bool", _found(values), hint=hint))
        elif (
            key == "target"
            and spec.task == "regression"
            and (pd.api.types.is_bool_dtype(values) or not _numeric(values))
        ):
            hint = 'a classification spec (task = "classification") takes any label type'
            problems.append(ColumnProblem(key, column, "numeric for a regression target", _found(values), hint=hint))
        elif key == "timestamp" and not _datetime_like(values):
            hint = (
                "epoch numbers are ambiguous (seconds? milliseconds?): convert them to datetimes upstream"
                if pd.api.types.is_numeric_dtype(values)
                else "some values do not parse as dates: fix them upstream, or point timestamp at another column"
            )
            problems.append(
                ColumnProblem(key, column, "a datetime, or text that parses as one", _found(values), hint=hint)
            )
    return problems


def _numeric(values: pd.Series) -> bool:
    import numbers

    if pd.api.types.is_numeric_dtype(values):
        return True
    # SQL drivers hand back Decimals and nullable ints as objects: numbers all the same.
    return bool(values.dtype == object) and all(isinstance(v, numbers.Number) for v in values.dropna())


def _datetime_like(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values):
        return False  # epoch numbers could be seconds or milliseconds: guessing would misplace every row
    try:
        pd.to_datetime(values.dropna().astype(str), format="mixed")
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _found(values: pd.Series) -> str:
    example = values.dropna().iloc[0]
    return f"{values.dtype}, e.g. {example!r}"


def read_head(spec: ModelSpec, rows: int = HEAD_ROWS) -> Batch:
    """Read the first ``rows`` rows of the spec's source: of its first file, a SQL LIMIT, or a bundled dataset."""
    source = spec.source
    if source.path is not None:
        pattern = spec.resolve(source.path)
        files = expand(pattern)
        if not files:
            raise DataError(f"{pattern}: no files match (source.path in {spec.label})")
        frame = _file_head(files[0], source.format, rows)
        return Batch(origin=files[0], frame=frame, fingerprint=fingerprint(frame), path=files[0])
    if source.sql is not None:
        return _sql_batch(source, limit=rows)
    batch = _sklearn_batch(str(source.sklearn), spec)
    frame = batch.frame.head(rows)
    return Batch(origin=batch.origin, frame=frame, fingerprint=fingerprint(frame))


def check_head(spec: ModelSpec, rows: int = HEAD_ROWS) -> HeadCheck:
    """Read the head of the spec's source; raise SpecError naming every missing column and wrong type."""
    head = read_head(spec, rows)
    problems = missing_columns(spec, head.columns) + dtype_problems(spec, head.frame)
    if problems:
        what = f"the data does not match the spec (first {head.rows} rows of {head.origin})"
        raise SpecError(_problems_message(spec, what, problems, head.columns))
    checked = tuple((key, column, str(head.frame[column].dtype)) for key, column in declared_columns(spec))
    return HeadCheck(head.origin, head.rows, tuple(head.columns), checked)


def _file_head(path: str, declared_format: str | None, rows: int) -> pd.DataFrame:
    kind = _format_of(path, declared_format)
    try:
        if kind == "parquet":
            import fsspec
            import pyarrow as pa
            import pyarrow.parquet as pq

            with fsspec.open(path, "rb") as handle:
                parquet = pq.ParquetFile(handle)
                # iter_batches decodes only the first row group's first pages, however large the file.
                first = next(parquet.iter_batches(batch_size=rows), None)
                table = pa.Table.from_batches([first]) if first is not None else parquet.schema_arrow.empty_table()
                frame: pd.DataFrame = table.to_pandas()
                return frame
        tabs = path.lower().removesuffix(".gz").removesuffix(".zst").endswith(".tsv")
        return pd.read_csv(path, sep="\t" if tabs else ",", nrows=rows)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # pandas/pyarrow raise many types for a damaged file; name the file once
        raise DataError(f"{path}: cannot read as {kind}: {error}") from error


# -- quarantine: keep a failed batch byte-identical, never lose or overwrite anything -------------------------

SourceKind = Literal["source", "landing"]


def quarantine(batch: Batch, model: str, root: Path, evidence: dict[str, Any], *, where: SourceKind = "source") -> Path:
    """Keep a failed batch byte-identical under ``root/<model>/<time>-<fingerprint>/`` with the evidence beside it.

    ``where="source"`` (the default, and the only safe one for a spec's source): the file is copied and left in
    place, since it is the user's. ``where="landing"``: the file is moved out of the monitor's landing area, so
    the next monitor run does not see it again. Rows read from SQL or a bundled dataset are written as Parquet.
    ``validation.json`` records the kind, the origin path and the bytes' sha256, so replay can return the batch.
    The same failure of the same bytes from the same source is kept once: a second run reuses the first copy.
    """
    record: dict[str, Any] = {
        "origin": batch.origin,
        "fingerprint": batch.fingerprint,
        "rows": batch.rows,
        "source_kind": where,
        "origin_path": batch.path,
    }
    if batch.path is not None and where == "source":
        earlier = _earlier_copy(root / model, record, batch.path, evidence)
        if earlier is not None:
            return earlier
    folder = _new_folder(root / model, batch.fingerprint)
    target = folder / (Path(batch.path).name if batch.path is not None else "batch.parquet")
    stamp = {"file": target.name, "quarantined_at": datetime.now(UTC).isoformat()}
    if batch.path is None:
        batch.frame.to_parquet(target, index=False)
        _write_json(
            folder / "validation.json",
            {**record, **stamp, "moved": False, "sha256": sha256_of(str(target)), **evidence},
        )
    elif where == "landing":
        # The evidence is written first: if the move is interrupted, the batch is still where it was, never lost.
        digest = sha256_of(batch.path)
        _write_json(folder / "validation.json", {**record, **stamp, "moved": True, "sha256": digest, **evidence})
        _move(batch.path, target)
    else:
        # Copying loses nothing if interrupted (the source stays), so the record can carry the copy's own digest.
        digest = _copy_exclusive(batch.path, target)
        _write_json(folder / "validation.json", {**record, **stamp, "moved": False, "sha256": digest, **evidence})
    return target


def read_record(folder: Path) -> dict[str, Any]:
    """The ``validation.json`` of a quarantine folder."""
    path = folder / "validation.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DataError(f"{path}: missing; this is not a quarantine folder") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON: {error}") from None


def _earlier_copy(folder: Path, record: dict[str, Any], source: str, evidence: dict[str, Any]) -> Path | None:
    """A kept copy of the same bytes from the same source with the same evidence, not replayed since.

    A nightly run on a source the user has not fixed yet fails the same way every night: one copy is evidence
    enough, and the alert points at the same folder each time.
    """
    if not folder.is_dir():
        return None
    evidence = json.loads(json.dumps(evidence, default=str))
    wanted = {**record, **evidence}
    for candidate in sorted(folder.glob(f"*-{record['fingerprint'][:12]}*"), reverse=True):
        if (candidate / "replayed.json").exists() or not (candidate / "validation.json").is_file():
            continue
        try:
            kept = read_record(candidate)
        except DataError:
            continue
        target = candidate / str(kept.get("file"))
        same = all(kept.get(key) == value for key, value in wanted.items()) and target.is_file()
        if same and sha256_of(source) == kept.get("sha256"):
            return target
    return None


def _new_folder(parent: Path, fingerprint: str) -> Path:
    """A fresh folder named by time and fingerprint; never one that exists (a redelivered batch gets its own)."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for attempt in range(100):
        folder = parent / f"{stamp}-{fingerprint[:12]}{f'-{attempt}' if attempt else ''}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise DataError(f"{parent}: cannot make a new quarantine folder for {fingerprint[:12]}")


def _write_json(path: Path, value: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
    partial.replace(path)


def _remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _local(location: str) -> Path:
    return Path(location.removeprefix("file://"))


def sha256_of(location: str) -> str:
    """The sha256 of a file's bytes, local or behind an fsspec URL."""
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(location, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def exists(location: str) -> bool:
    """Whether a file exists, local or behind an fsspec URL."""
    if _remote(location):
        import fsspec

        fs, _, (path,) = fsspec.get_fs_token_paths(location)
        return bool(fs.exists(path))
    return _local(location).exists()


def _copy_exclusive(source: str, target: Path) -> str:
    """Copy ``source`` to a new local file ``target`` (never over an existing one); return the copy's sha256."""
    import fsspec

    digest = hashlib.sha256()
    partial = target.with_name(f".{target.name}.partial")
    try:
        with fsspec.open(source, "rb") as remote, open(partial, "xb") as local:
            for chunk in iter(lambda: remote.read(1 << 20), b""):
                digest.update(chunk)
                local.write(chunk)
            local.flush()
            os.fsync(local.fileno())
        # A hard link refuses an existing name: the copy appears whole and never replaces another file.
        os.link(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()


def copy_to(source: Path, target: str) -> None:
    """Copy a local file to ``target`` (local path or fsspec URL), refusing to replace anything there."""
    if _remote(target):
        import fsspec

        fs, _, (path,) = fsspec.get_fs_token_paths(target)
        if fs.exists(path):
            raise DataError(f"{target}: a file is already there; nothing was copied")
        fs.put_file(str(source), path)
        return
    local = _local(target)
    local.parent.mkdir(parents=True, exist_ok=True)
    # The partial name starts with a dot, so a source glob like *.parquet does not pick up a half-written copy.
    partial = local.with_name(f".{local.name}.driftline-partial")
    try:
        shutil.copyfile(source, partial)
        try:
            os.link(partial, local)
        except FileExistsError:
            raise DataError(f"{target}: a file is already there; nothing was copied") from None
    finally:
        partial.unlink(missing_ok=True)


def move_to(source: Path, target: str) -> None:
    """Move a local file to ``target`` (local path or fsspec URL), refusing to replace anything there."""
    if _remote(target):
        copy_to(source, target)
        source.unlink()
        return
    local = _local(target)
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Same file system: a hard link then an unlink is an atomic move that never replaces another file.
        os.link(source, local)
    except FileExistsError:
        raise DataError(f"{target}: a file is already there; nothing was moved") from None
    except OSError:
        copy_to(source, target)  # across file systems
    source.unlink()


def new_file(folder: Path, name: str) -> Path:
    """Reserve a new, empty file named ``name`` in ``folder`` (``stem-2.ext``, … if taken); never an existing one."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, dot, suffix = name.partition(".")
    for attempt in range(1, 1000):
        candidate = folder / (name if attempt == 1 else f"{stem}-{attempt}{dot}{suffix}")
        try:
            candidate.open("xb").close()
        except FileExistsError:
            continue
        return candidate
    raise DataError(f"{folder}: no free name for {name}")


def move_new(source: str, folder: Path, name: str) -> Path:
    """Move a file (local or fsspec URL) into ``folder`` under ``name``, or a free variant of it; return where."""
    target = new_file(folder, name)
    if _remote(source):
        import fsspec

        fs, _, (path,) = fsspec.get_fs_token_paths(source)
        target.unlink()  # the reservation: _copy_exclusive creates the name itself, refusing to replace
        _copy_exclusive(source, target)
        fs.rm(path)
    else:
        # os.replace over our own empty reservation: the name was free a moment ago and is ours alone now.
        try:
            os.replace(_local(source), target)
        except OSError:
            shutil.copyfile(_local(source), target)  # across file systems
            _local(source).unlink()
    return target


def archive(batch: Batch, root: Path, model: str, *, duplicate: bool = False) -> Path:
    """Move a processed landing batch, byte-identical, into ``root/<model>/`` (``duplicates/`` for a repeat).

    Rows that came from no file are written as Parquet. A redelivered file of the same name and content gets a
    name of its own: an earlier copy is never replaced.
    """
    folder = root / model / ("duplicates" if duplicate else "")
    name = f"{batch.fingerprint[:16]}-{Path(batch.path or 'batch.parquet').name}"
    if batch.path is None:
        target = new_file(folder, name)
        batch.frame.to_parquet(target, index=False)
        return target
    return move_new(batch.path, folder, name)


def _move(source: str, target: Path) -> None:
    """Move a landing file into quarantine (``target`` is new and local)."""
    if _remote(source):
        import fsspec

        fs, _, (path,) = fsspec.get_fs_token_paths(source)
        _copy_exclusive(source, target)
        fs.rm(path)
    else:
        shutil.move(source.removeprefix("file://"), target)
