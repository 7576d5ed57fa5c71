"""Lineage: everything needed to say where a model version came from and to reproduce it."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

import driftline

if TYPE_CHECKING:
    from driftline.loop.gate import GateDecision
    from driftline.loop.modeling import Metrics
    from driftline.loop.training import FittedModel, Holdout
    from driftline.loop.validation import Validated
    from driftline.spec import ModelSpec


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
    code_diff_digest: str | None = Field(
        default=None, description="sha256 of `git diff HEAD` when the work tree had changes"
    )
    spec_digest: str | None = Field(
        default=None, description="digest of the training-relevant spec keys and the suite (spec.training_digest)"
    )
    flow_run_id: str | None
    model_files: dict[str, str] | None = Field(
        default=None,
        description="sha256 of every file of the stored model by relative path, recorded at packaging; "
        "None: packaged before driftline recorded them (such a version is not loaded)",
    )
    window: list[str] = Field(default_factory=list, description="recent batches added to the training data")
    drift_event: dict[str, Any] | None = Field(default=None, description="the drift that started this retrain")
    driftline_version: str = driftline.__version__
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def for_run(
        cls,
        spec: ModelSpec,
        *,
        reason: str,
        data: Validated,
        identity: TrainingIdentity,
        profile_path: str,
        holdout: Holdout,
        fitted: FittedModel,
        metrics: Metrics,
        decision: GateDecision,
        flow_run_id: str | None,
        drift_event: dict[str, Any] | None,
    ) -> Lineage:
        """The lineage of the version a training run is about to package (its version and tag come after)."""
        code = identity.code
        return cls(
            model=spec.name,
            reason=reason,
            data_fingerprint=identity.data_fingerprint,
            data_sources=[b.origin for b in data.training],
            rows=sum(b.rows for b in data.training),
            suite=str(spec.suite_path.name),
            suite_digest=data.suite_digest,
            spec_digest=identity.spec_digest,
            profile_path=profile_path,
            holdout_path=holdout.path,
            holdout_digest=holdout.digest,
            holdout_rows=holdout.rows,
            split_seed=holdout.seed,
            holdout_fraction=holdout.fraction,
            estimator=spec.estimator.kind,
            params=spec.estimator.params,
            seed=spec.estimator.seed,
            metrics=metrics.values,
            gate=decision.as_dict(),
            schema=fitted.schema.as_dict(),
            code_version=code.commit,
            code_dirty=code.dirty,
            code_diff_digest=code.diff_digest,
            lock_digest=code.lock_digest,
            flow_run_id=flow_run_id,
            window=[b.origin for b in data.passed_recent],
            drift_event=drift_event,
        )

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def identity(self) -> TrainingIdentity:
        return TrainingIdentity(
            data_fingerprint=self.data_fingerprint,
            spec_digest=self.spec_digest,
            code=CodeVersion(self.code_version, self.code_dirty, self.code_diff_digest, self.lock_digest),
            driftline_version=self.driftline_version,
        )


@dataclass(frozen=True)
class CodeVersion:
    """The code a model was trained with: the project's git commit (and its uncommitted diff) and the lock."""

    commit: str | None
    dirty: bool | None
    diff_digest: str | None
    lock_digest: str | None

    def same_as(self, other: CodeVersion) -> bool:
        """Whether both are provably the same code: same commit and lock, and the same diff if either was dirty.

        Outside a git repository both commits are None; the lock and driftline's version still have to match,
        and the spec and suite are compared by their own digest.
        """
        if (self.commit, self.lock_digest) != (other.commit, other.lock_digest):
            return False
        if self.dirty or other.dirty:
            return self.diff_digest is not None and self.diff_digest == other.diff_digest
        return True


@dataclass(frozen=True)
class TrainingIdentity:
    """What decides the model a run trains: its data, the training-relevant spec and suite, and the code."""

    data_fingerprint: str
    spec_digest: str | None
    code: CodeVersion
    driftline_version: str = driftline.__version__

    @classmethod
    def of_run(cls, spec: ModelSpec, data_fingerprint: str, suite_digest: str) -> TrainingIdentity:
        """The identity of a run about to train on data with this fingerprint, validated by this suite."""
        from driftline.spec import training_digest

        return cls(data_fingerprint, training_digest(spec, suite_digest), code_version(spec.project_dir))

    def differences(self, champion: TrainingIdentity) -> list[str]:
        """Name what differs from the champion's; empty when the run would retrain the champion itself.

        A champion without a spec digest (trained before it was recorded) never matches.
        """
        found = []
        if self.data_fingerprint != champion.data_fingerprint:
            found.append("data fingerprint")
        if champion.spec_digest is None or self.spec_digest != champion.spec_digest:
            found.append("spec digest")
        if not self.code.same_as(champion.code):
            found.append("code version")
        if self.driftline_version != champion.driftline_version:
            found.append("driftline version")
        return found


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


def code_version(project_dir: Path) -> CodeVersion:
    """The project's commit, whether its tree is dirty, the digest of its uncommitted diff, and its lock digest."""
    commit, dirty = git_commit(project_dir)
    diff_digest = None
    if dirty:
        try:
            diff = subprocess.run(
                ["git", "diff", "HEAD"], cwd=project_dir, capture_output=True, timeout=30, check=True
            ).stdout
            diff_digest = hashlib.sha256(diff).hexdigest()
        except (OSError, subprocess.SubprocessError):
            diff_digest = None
    return CodeVersion(commit, dirty, diff_digest, lock_digest(project_dir))


def lock_digest(project_dir: Path) -> str | None:
    """sha256 of the project's ``uv.lock``: the exact dependency set the model was trained with."""
    lock = project_dir / "uv.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None
