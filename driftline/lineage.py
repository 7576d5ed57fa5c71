"""Lineage: everything needed to say where a model version came from and to reproduce it."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import driftline


class Lineage(BaseModel):
    """The lineage of one model version, stored in the registry and in the BentoML model's metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: str | None = None
    tag: str | None = None
    reason: str
    data_fingerprint: str
    data_sources: list[str]
    rows: int
    suite: str
    suite_digest: str
    profile_path: str
    holdout_path: str
    holdout_digest: str
    holdout_rows: int
    split_seed: int
    holdout_fraction: float
    estimator: str
    params: dict[str, Any]
    seed: int
    metrics: dict[str, float]
    gate: dict[str, Any]
    schema_: dict[str, Any] = Field(alias="schema")
    code_version: str | None
    code_dirty: bool | None
    lock_digest: str | None
    flow_run_id: str | None
    window: list[str] = Field(default_factory=list, description="recent batches added to the training data")
    drift_event: dict[str, Any] | None = Field(default=None, description="the drift that started this retrain")
    driftline_version: str = driftline.__version__
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def git_commit(project_dir: Path) -> tuple[str | None, bool | None]:
    """The project's git commit and whether the work tree has changes; (None, None) outside a repository."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(status.strip())


def lock_digest(project_dir: Path) -> str | None:
    """sha256 of the project's ``uv.lock``: the exact dependency set the model was trained with."""
    lock = project_dir / "uv.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None
