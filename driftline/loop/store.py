"""The model store: BentoML's, under driftline's state directory unless BENTOML_HOME says otherwise.

A version is saved as a scikit-learn Pipeline with its training schema as a custom object, driftline labels, and
the lineage (as JSON) in its metadata, so the model carries its own history wherever the store is copied.

Loading checks first: :func:`load` hashes the version's files against the digests recorded when it was packaged
(:mod:`driftline.loop.integrity`) and unpickles only if every file matches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftline import libs
from driftline.errors import StoreError
from driftline.loop import integrity


def save(
    model_name: str,
    model: Any,
    *,
    classifier: bool,
    labels: dict[str, str],
    lineage: dict[str, Any],
    schema: dict[str, Any],
) -> str:
    """Save a fitted pipeline; return its tag ``name:version``."""
    bentoml = libs.bentoml()
    signatures = {"predict": {"batchable": True, "batch_dim": 0}}
    if classifier:
        signatures["predict_proba"] = {"batchable": True, "batch_dim": 0}
    saved = bentoml.sklearn.save_model(
        model_name,
        model,
        signatures=signatures,
        labels={"driftline.model": model_name, **labels},
        metadata={"lineage": json.dumps(lineage, default=str)},
        custom_objects={"schema": schema},
    )
    return str(saved.tag)


def folder(tag: str) -> Path:
    """The version's folder in the model store (reading its model.yaml only, nothing unpickled)."""
    bentoml = libs.bentoml()
    try:
        return Path(bentoml.models.get(tag).path)
    except bentoml.exceptions.NotFound:
        raise StoreError(f"{tag}: not in the BentoML model store at {bentoml_home()}") from None


def digests(tag: str) -> dict[str, str]:
    """The sha256 of every file of a stored version, for its lineage and the registry."""
    return integrity.folder_digests(folder(tag))


def load(tag: str, files: Mapping[str, str] | None) -> Any:
    """Load a saved pipeline by tag after checking its files against ``files``, the digests recorded when it was
    packaged; ModelIntegrityError, and nothing unpickled, on any difference or when none were recorded."""
    bentoml = libs.bentoml()
    integrity.verify(tag, folder(tag), files)
    try:
        return bentoml.sklearn.load_model(tag)
    except bentoml.exceptions.NotFound:
        raise StoreError(f"{tag}: not in the BentoML model store at {bentoml_home()}") from None


def bentoml_home() -> str:
    from driftline.settings import get_settings

    return str(get_settings().bentoml_home)
