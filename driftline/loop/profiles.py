"""whylogs profiles and the profile store. All of driftline's whylogs use goes through this module.

whylogs 1.6.4 is effectively unmaintained: it needs a numpy-2 shim (``driftline.libs.numpy_compat``), crashes
on categorical columns holding NaN, and spends most of its time on datetime columns while yielding only counts.
So frames are prepared here first: categoricals become plain objects and datetime columns are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from driftline import libs
from driftline.errors import StoreError

if TYPE_CHECKING:
    from driftline.loop.data import Batch
    from driftline.spec import ModelSpec


@dataclass(frozen=True)
class ProfileRecord:
    """A stored whylogs profile: where it is, what it covers."""

    path: str
    rows: int
    columns: tuple[str, ...]


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the columns whylogs profiles well: categoricals as objects, datetimes left out."""
    keep = [c for c, t in frame.dtypes.items() if not pd.api.types.is_datetime64_any_dtype(t)]
    prepared = frame[keep]
    categorical = [c for c, t in prepared.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
    if categorical:
        prepared = prepared.astype({c: object for c in categorical})
    return prepared


def profile_view(frame: pd.DataFrame) -> Any:
    """Profile a frame with whylogs and return the profile view."""
    why = libs.whylogs()
    return why.log(pandas=prepare(frame)).view()


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

    libs.whylogs()
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


def profile_batch(
    batch: Batch, spec: ModelSpec, store: str, kind: str, extra: dict[str, list[Any]] | None = None
) -> ProfileRecord:
    """Profile the spec's columns of a batch into ``<store>/<model>/<kind>/<fingerprint>.bin``.

    ``extra`` columns (a model's predictions) may cover a sample of the rows: they are profiled apart and merged,
    so each column keeps its own count.
    """
    frame = batch.frame[[c for c in spec.columns if c in batch.frame.columns]]
    if extra is None:
        return store_profile(frame, store, spec.name, kind, batch.fingerprint)
    view = profile_view(frame).merge(profile_view(pd.DataFrame(extra)))
    path = profile_path(store, spec.name, kind, batch.fingerprint)
    write_profile(view, path)
    return ProfileRecord(path=path, rows=len(frame), columns=tuple(str(c) for c in view.get_columns()))
