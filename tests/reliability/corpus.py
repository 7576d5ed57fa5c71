"""A corpus of bad landing entries and bad training-source files, each with the state it must end in.

Generated, seeded and small. ``LANDING`` holds at least 40 kinds of bad landing entry; ``SOURCES`` at least 10 kinds
of bad training-source file. The expected state of a landing entry is one of:

- ``quarantined:<reason>``: moved out of the landing area byte-identical (reason: empty, unreadable, wrong_encoding,
  unknown_format, invalid);
- ``link``: a symbolic link, moved to quarantine as a link (its target recorded, never read);
- ``rejected``: not a regular file (directory, FIFO), reported and left in place;
- ``waiting``: not ready (hidden, upload in progress, not settled), left in place;
- ``accepted``: read and scored (a harmless oddity, such as an extra column or a UTF-8 BOM).
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from driftline.examples.fraud import generate

ROWS = 150  # above the suite's minimum of 100 rows


@dataclass(frozen=True)
class Case:
    name: str  # the entry's name in the landing area (or the source folder)
    what: str  # what is wrong with it, in words
    expect: str  # the state it must end in (see the module docstring)
    make: Callable[[Path, int], None]  # writes the entry at the path; the int is a seed unique to the case


def _frame(seed: int) -> pd.DataFrame:
    return generate(ROWS, 1000 + seed)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _csv(frame: pd.DataFrame, **options: object) -> str:
    return str(frame.to_csv(index=False, **options))  # type: ignore[call-overload]


def _bytes(content: bytes | Callable[[int], bytes]) -> Callable[[Path, int], None]:
    def write(path: Path, seed: int) -> None:
        path.write_bytes(content(seed) if callable(content) else content)

    return write


def _text(render: Callable[[int], str], encoding: str = "utf-8") -> Callable[[Path, int], None]:
    return _bytes(lambda seed: render(seed).encode(encoding))


def _table(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path, int], None]:
    return _bytes(lambda seed: _parquet(change(_frame(seed))))


def _latin(seed: int) -> str:
    frame = _frame(seed)
    frame.loc[0, "transaction_id"] = "caf\xe9"
    return _csv(frame)


def _random(seed: int, size: int = 4096) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _symlink(target: Callable[[Path], Path]) -> Callable[[Path, int], None]:
    def write(path: Path, seed: int) -> None:
        path.symlink_to(target(path))

    return write


def _outside_secret(path: Path) -> Path:
    secret = path.parent.parent.parent / "secret.csv"
    secret.write_text("token\nSECRET-hunter2\n")
    return secret


def _inside_target(path: Path) -> Path:
    target = path.parent / ".inside-target.parquet"  # hidden: it waits, and only the link is judged
    target.write_bytes(_parquet(_frame(99)))
    return target


def _directory(path: Path, seed: int) -> None:
    path.mkdir()
    (path / "inner.parquet").write_bytes(_parquet(_frame(seed)))


def _fifo(path: Path, seed: int) -> None:
    os.mkfifo(path)


def _set(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.assign(**{column: value})


def _truncated_csv(seed: int) -> str:
    text = _csv(_frame(seed))
    return text[: int(len(text) * 0.6)]  # cut in the middle of a row: the last row has too few fields


LANDING: list[Case] = [
    # -- empty -----------------------------------------------------------------------------------------------
    Case("zero.parquet", "0 bytes, Parquet name", "quarantined:empty", _bytes(b"")),
    Case("zero.csv", "0 bytes, CSV name", "quarantined:empty", _bytes(b"")),
    Case("header-only.csv", "a CSV header and no rows", "quarantined:empty", _text(lambda s: _csv(_frame(s).head(0)))),
    Case("blank-lines.csv", "only blank lines", "quarantined:empty", _bytes(b"\n\n\n")),
    Case("no-rows.parquet", "a Parquet schema and no rows", "quarantined:empty", _table(lambda f: f.head(0))),
    # -- unreadable --------------------------------------------------------------------------------------------
    Case(
        "truncated.parquet", "Parquet cut short", "quarantined:unreadable", _bytes(lambda s: _parquet(_frame(s))[:700])
    ),
    Case("garbage.parquet", "random bytes, Parquet name", "quarantined:unreadable", _bytes(_random)),
    Case("magic-only.parquet", "just the PAR1 magic", "quarantined:unreadable", _bytes(b"PAR1")),
    Case("csv-named.parquet", "CSV text, Parquet name", "quarantined:unreadable", _text(lambda s: _csv(_frame(s)))),
    Case("plain-named.csv.gz", "plain CSV, gzip name", "quarantined:unreadable", _text(lambda s: _csv(_frame(s)))),
    Case(
        "ragged.csv",
        "rows with more fields than the header",
        "quarantined:unreadable",
        _text(lambda s: _csv(_frame(s)) + "1,2,3,4,5,6,7,8,9,10,11,12\n"),
    ),
    Case(
        "duplicate-header.csv",
        "a header naming amount twice",
        "quarantined:unreadable",
        _text(lambda s: _csv(_frame(s).assign(dup=1.0)).replace(",dup", ",amount", 1)),
    ),
    Case("truncated.csv", "CSV cut in the middle of a row", "quarantined:invalid", _text(_truncated_csv)),
    # -- wrong encoding -------------------------------------------------------------------------------------------
    Case("latin1.csv", "latin-1 text", "quarantined:wrong_encoding", _text(_latin, "latin-1")),
    Case("utf16.csv", "UTF-16 text", "quarantined:wrong_encoding", _text(lambda s: _csv(_frame(s)), "utf-16")),
    Case(
        "gzip-named.csv",
        "gzip bytes, CSV name",
        "quarantined:wrong_encoding",
        _bytes(lambda s: gzip.compress(_csv(_frame(s)).encode())),
    ),
    Case(
        "parquet-named.csv",
        "Parquet bytes, CSV name",
        "quarantined:wrong_encoding",
        _bytes(lambda s: _parquet(_frame(s))),
    ),
    Case("junk.csv", "random bytes, CSV name", "quarantined:wrong_encoding", _bytes(_random)),
    # -- unknown format -----------------------------------------------------------------------------------------
    Case("notes.txt", "a .txt file", "quarantined:unknown_format", _bytes(b"remember the milk\n")),
    Case(
        "rows.json",
        "JSON rows",
        "quarantined:unknown_format",
        _text(lambda s: str(_frame(s).to_json(orient="records", date_format="iso"))),
    ),
    Case("sheet.xlsx", "a spreadsheet name", "quarantined:unknown_format", _bytes(b"PK\x03\x04 not really a workbook")),
    Case("no-extension", "no extension", "quarantined:unknown_format", _text(lambda s: _csv(_frame(s)))),
    Case("blob.bin", "binary junk", "quarantined:unknown_format", _bytes(_random)),
    Case("archive.zip", "a zip name", "quarantined:unknown_format", _bytes(b"PK\x05\x06" + b"\x00" * 18)),
    # -- invalid (read, then failed the suite) ------------------------------------------------------------------
    Case(
        "wrong-dtype.csv",
        "text in a numeric column",
        "quarantined:invalid",
        _text(lambda s: _csv(_frame(s).assign(amount="lots"))),
    ),
    Case(
        "missing-column.parquet", "no amount column", "quarantined:invalid", _table(lambda f: f.drop(columns="amount"))
    ),
    Case("all-null.parquet", "amount null in every row", "quarantined:invalid", _table(_set("amount", None))),
    Case(
        "nan-inf.parquet",
        "amount NaN and inf",
        "quarantined:invalid",
        _table(lambda f: f.assign(amount=[np.nan, np.inf] * (len(f) // 2))),
    ),
    Case(
        "huge-field.csv",
        "a 1 MB merchant_category",
        "quarantined:invalid",
        _text(
            lambda s: _csv(_frame(s).assign(merchant_category=lambda f: ["x" * 1_000_000] + ["fuel"] * (len(f) - 1)))
        ),
    ),
    Case(
        "quoted-newlines.csv",
        "a category with a newline inside quotes",
        "quarantined:invalid",
        _text(lambda s: _csv(_frame(s).assign(merchant_category="gro\ncery"))),
    ),
    Case("semicolons.csv", "semicolon delimiter", "quarantined:invalid", _text(lambda s: _csv(_frame(s), sep=";"))),
    Case(
        "tabs-named.csv", "tab delimiter, CSV name", "quarantined:invalid", _text(lambda s: _csv(_frame(s), sep="\t"))
    ),
    Case("too-few-rows.parquet", "10 rows (the suite wants 100)", "quarantined:invalid", _table(lambda f: f.head(10))),
    Case("negative-amount.parquet", "negative amounts", "quarantined:invalid", _table(_set("amount", -5.0))),
    Case(
        "unknown-category.parquet",
        "a merchant category the suite does not know",
        "quarantined:invalid",
        _table(_set("merchant_category", "casino")),
    ),
    Case("string-target.parquet", "the target as yes/no", "quarantined:invalid", _table(_set("is_fraud", "no"))),
    Case("hour-out-of-range.csv", "hour 25", "quarantined:invalid", _text(lambda s: _csv(_frame(s).assign(hour=25)))),
    Case("null-event-time.parquet", "event_time null", "quarantined:invalid", _table(_set("event_time", pd.NaT))),
    # -- harmless oddities: read and scored ---------------------------------------------------------------------
    Case("extra-column.parquet", "a column the spec does not name", "accepted", _table(_set("note", "extra"))),
    Case("bom.csv", "UTF-8 with a byte-order mark", "accepted", _text(lambda s: _csv(_frame(s)), "utf-8-sig")),
    # -- not ready: left in place ---------------------------------------------------------------------------------
    Case("upload.csv.tmp", "an upload in progress (.tmp)", "waiting", _text(lambda s: _csv(_frame(s)))),
    Case("upload.parquet.part", "an upload in progress (.part)", "waiting", _table(lambda f: f)),
    Case("upload.csv.partial", "an upload in progress (.partial)", "waiting", _text(lambda s: _csv(_frame(s)))),
    Case("download.parquet.crdownload", "a browser download in progress", "waiting", _table(lambda f: f)),
    Case(".hidden.parquet", "a hidden file", "waiting", _table(lambda f: f)),
    Case("fresh.parquet", "written just now (not settled)", "waiting", _table(lambda f: f)),
    # -- not a regular file ---------------------------------------------------------------------------------------
    Case("link-out.csv", "a link to a secret outside the landing area", "link", _symlink(_outside_secret)),
    Case("link-in.parquet", "a link to a file inside the landing area", "link", _symlink(_inside_target)),
    Case("dangling.csv", "a link to nothing", "link", _symlink(lambda p: p.parent / "does-not-exist.csv")),
    Case("link-to-dir", "a link to a directory", "link", _symlink(lambda p: p.parent.parent)),
    Case("subdir", "a directory", "rejected", _directory),
    Case("folder.parquet", "a directory with a Parquet name", "rejected", _directory),
    Case("pipe.csv", "a FIFO (opening it would block)", "rejected", _fifo),
]

FRESH = {"fresh.parquet"}  # written after the others are backdated: not settled when the monitor looks


def write_landing(folder: Path) -> dict[str, Case]:
    """Write every landing case into ``folder``; all but FRESH are backdated past any settle time."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, case in enumerate(LANDING):
        if case.name not in FRESH:
            case.make(folder / case.name, seed)
    past = os.path.getmtime(folder) - 3600
    for path in folder.iterdir():
        os.utime(path, (past, past), follow_symlinks=False)
    for seed, case in enumerate(LANDING):
        if case.name in FRESH:
            case.make(folder / case.name, seed)
    return {case.name: case for case in LANDING}


# -- training sources: the user's files, never moved ---------------------------------------------------------------

SOURCES: list[Case] = [
    Case("zero.parquet", "0 bytes", "skipped:empty", _bytes(b"")),
    Case("truncated.parquet", "Parquet cut short", "skipped:unreadable", _bytes(lambda s: _parquet(_frame(s))[:700])),
    Case("garbage.parquet", "random bytes", "skipped:unreadable", _bytes(_random)),
    Case("csv-named.parquet", "CSV text, Parquet name", "skipped:unreadable", _text(lambda s: _csv(_frame(s)))),
    Case("latin1.csv", "latin-1 text", "skipped:wrong_encoding", _text(_latin, "latin-1")),
    Case("utf16.csv", "UTF-16 text", "skipped:wrong_encoding", _text(lambda s: _csv(_frame(s)), "utf-16")),
    Case("notes.txt", "a .txt file", "skipped:unknown_format", _bytes(b"remember the milk\n")),
    Case("sheet.xlsx", "a spreadsheet name", "skipped:unknown_format", _bytes(b"PK\x03\x04")),
    Case("header-only.csv", "a header and no rows", "skipped:empty", _text(lambda s: _csv(_frame(s).head(0)))),
    Case("no-rows.parquet", "a schema and no rows", "skipped:empty", _table(lambda f: f.head(0))),
    Case(
        "duplicate-header.csv",
        "a header naming amount twice",
        "skipped:unreadable",
        _text(lambda s: _csv(_frame(s).assign(dup=1.0)).replace(",dup", ",amount", 1)),
    ),
    Case(
        "ragged.csv",
        "a row with too many fields",
        "skipped:unreadable",
        _text(lambda s: _csv(_frame(s)) + "1,2,3,4,5,6,7,8,9,10,11,12\n"),
    ),
]


def write_sources(folder: Path) -> dict[str, Case]:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, case in enumerate(SOURCES):
        case.make(folder / case.name, 500 + seed)
    return {case.name: case for case in SOURCES}
