"""Cache keys for the steps whose answer depends only on their inputs: validation, profiling, fitting.

A key is a digest of what decides the answer, never of the frames themselves (hashing a 10M-row frame costs more than
some of the steps): the batch's fingerprint (taken once, when it is loaded), the suite's digest, the spec's, and the
code's. A changed suite, spec, code or batch is a different key, so a cached answer is never a stale one:

- code: the project's commit, its uncommitted diff and its ``uv.lock`` (``lineage.code_version``), driftline's
  version and a digest of driftline's own source and of the task modules (an edited install is new code too);
- scope: the state directory and the profile store, so two projects (or two tests) never share answers; a profile's
  key also holds the store's generation, a random id kept in the store, so a wiped store is a miss.

Prefect keeps the answers (its result storage: ``PREFECT_LOCAL_STORAGE_PATH`` or the server's default block) and
looks them up by these keys; ``tasks/options.py`` wires them in.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import driftline
from driftline.settings import get_settings

if TYPE_CHECKING:
    from driftline.loop.data import Batch
    from driftline.loop.modeling import Split
    from driftline.spec import ModelSpec

KEY_VERSION = "1"  # bump when a cached result's type changes shape


@cache
def source_digest() -> str:
    """sha256 of driftline's Python source and of the task modules, as loaded by this process."""
    digest = hashlib.sha256()
    roots = [Path(driftline.__file__).parent]
    tasks = Path(driftline.__file__).parent.parent / "tasks"
    if tasks.is_dir():
        roots.append(tasks)
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def code_digest(project_dir: Path) -> str:
    """The code a cached answer was computed with: the project's commit, diff and lock, and driftline's source."""
    from driftline.loop.lineage import code_version

    code = code_version(project_dir)
    return key(
        "code", code.commit, code.dirty, code.diff_digest, code.lock_digest, driftline.__version__, source_digest()
    )


def spec_digest(spec: ModelSpec) -> str:
    """Every key of the spec (a change anywhere is a miss: validation reads the columns, fitting the estimator)."""
    return key("spec", spec.model_dump(mode="json"))


def suite_digest(spec: ModelSpec) -> str | None:
    """The suite's digest, or None if it cannot be read (then nothing is cached: the step reports the error)."""
    from driftline.loop.validation import suite_digest as digest

    try:
        return digest(spec.suite_path)
    except (OSError, ValueError):
        return None


def key(*parts: Any) -> str:
    """A sha256 of the parts as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _scope() -> list[str]:
    settings = get_settings()
    return [str(settings.state_dir), settings.profiles]


def _common(step: str, spec: ModelSpec) -> list[Any] | None:
    suite = suite_digest(spec)
    if suite is None:
        return None
    return [KEY_VERSION, step, *_scope(), spec_digest(spec), suite, code_digest(spec.project_dir)]


def validation_key(spec: ModelSpec, batch: Batch) -> str | None:
    """Validating one batch: its origin (the report names it) and fingerprint, the suite, the spec and the code."""
    common = _common("validate-batch", spec)
    return None if common is None else key(*common, batch.origin, batch.fingerprint)


def profile_key(spec: ModelSpec, batch: Batch, kind: str, store: str, has_extra: bool) -> str | None:
    """Profiling a batch into the store: its fingerprint and kind, and the store's generation (so a store wiped or
    replaced is a miss: the cached record would name a profile that is gone). None (no cache) with extra columns."""
    if has_extra:
        return None
    common = _common("profile-batch", spec)
    return None if common is None else key(*common, batch.fingerprint, kind, store_generation(store))


def fit_key(spec: ModelSpec, split: Split, threads: int) -> str | None:
    """Fitting: the rows (the batch's fingerprint, the split and the recent window's share) and the thread count."""
    if not split.fingerprint:
        return None
    common = _common("fit-model", spec)
    import numpy as np

    recent = 0 if split.train_recent is None else int(np.count_nonzero(split.train_recent))
    return None if common is None else key(*common, split.fingerprint, split.holdout_digest, recent, threads)


def store_generation(store: str) -> str:
    """A random id kept in the store (``<store>/.generation``), written on first use: it changes when the store is
    wiped or replaced, and with it every profile key."""
    import uuid

    import fsspec

    path = f"{store.rstrip('/')}/.generation"
    try:
        with fsspec.open(path, "rt") as handle:
            return str(handle.read()).strip()
    except FileNotFoundError:
        generation = uuid.uuid4().hex
        with fsspec.open(path, "wt", auto_mkdir=True) as handle:
            handle.write(generation)
        return generation
