"""Loading batches, fingerprinting them, and quarantining the ones that fail validation.

A batch is one arriving file (or one SQL read, or one bundled dataset). Its fingerprint hashes the content, not
the bytes on disk, so it is stable across processes and file formats and changes when any cell changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftline.errors import DataError, SpecError
from driftline.spec import ModelSpec, Source


@dataclass(frozen=True)
class Batch:
    """One batch of rows and where it came from."""

    origin: str
    frame: pd.DataFrame = field(repr=False, compare=False)
    fingerprint: str
    path: str | None = None  # set when the batch is a file that quarantine can move

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return [str(column) for column in self.frame.columns]


def fingerprint(frame: pd.DataFrame) -> str:
    """Hash column names, dtypes and every cell: stable across processes, different if one cell differs."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    # hash_pandas_object uses a fixed key, so the row hashes are the same in every process.
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


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
    """Read one Parquet or CSV file from a local path or fsspec URL."""
    kind = _format_of(path, declared_format)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        tabs = path.lower().removesuffix(".gz").removesuffix(".zst").endswith(".tsv")
        return pd.read_csv(path, sep="\t" if tabs else ",")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # pandas/pyarrow raise many types for a damaged file; name the file once
        raise DataError(f"{path}: cannot read as {kind}: {error}") from error


def expand(location: str) -> list[str]:
    """List the files a path, glob or fsspec URL names, sorted so runs see batches in the same order."""
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(location)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    files = sorted(path for path in paths if fs.isfile(path))
    if protocol in ("file", "local"):
        return files
    return [fs.unstrip_protocol(path) for path in files]


def load_source(spec: ModelSpec, location: str | None = None) -> list[Batch]:
    """Load every batch of the spec's source (or of ``location``, which replaces a file source for one run)."""
    source = spec.source if location is None else Source(path=location, format=spec.source.format)
    if source.path is not None:
        pattern = spec.resolve(source.path)
        files = expand(pattern)
        if not files:
            raise DataError(f"{pattern}: no files match (source.path in {spec.label})")
        return [_file_batch(path, source.format) for path in files]
    if source.sql is not None:
        return [_sql_batch(source)]
    return [_sklearn_batch(str(source.sklearn), spec)]


def _file_batch(path: str, declared_format: str | None) -> Batch:
    frame = read_file(path, declared_format)
    return Batch(origin=path, frame=frame, fingerprint=fingerprint(frame), path=path)


def _sql_batch(source: Source) -> Batch:
    import sqlalchemy as sa

    assert source.sql is not None
    sql = source.sql
    engine = sa.create_engine(sql.resolved_url())
    try:
        with engine.connect() as connection:
            if sql.table is not None:
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


def quarantine(batch: Batch, model: str, root: Path, evidence: dict[str, Any]) -> Path:
    """Keep a failed batch byte-identical under ``root/<model>/<time>-<fingerprint>/`` with the evidence beside it.

    A file batch is moved (so it is not picked up again and is never lost); rows read from SQL or a bundled
    dataset are written as Parquet, since the source is not ours to change.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / model / f"{stamp}-{batch.fingerprint[:12]}"
    folder.mkdir(parents=True, exist_ok=False)
    # The evidence is written first: if the move is interrupted the batch is still where it was, never lost.
    record = {"origin": batch.origin, "fingerprint": batch.fingerprint, "rows": batch.rows, **evidence}
    (folder / "validation.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    if batch.path is not None:
        target = folder / Path(batch.path).name
        _move(batch.path, target)
    else:
        target = folder / "batch.parquet"
        batch.frame.to_parquet(target, index=False)
    return target


def _move(source: str, target: Path) -> None:
    if "://" in source and not source.startswith("file://"):
        import fsspec

        fs, _, (path,) = fsspec.get_fs_token_paths(source)
        with fs.open(path, "rb") as remote, open(target, "wb") as local:
            shutil.copyfileobj(remote, local)
        fs.rm(path)
    else:
        shutil.move(source.removeprefix("file://"), target)
