"""The declarative model spec: ``deployments/<model>.toml`` parsed into pydantic models.

A new dataset needs a spec and an expectation suite, not new flow code. Every model forbids unknown keys, so a
typo is an error that names the file and the key.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftline.errors import SpecError
from driftline.settings import get_settings

TaskKind = Literal["classification", "regression"]
EstimatorKind = Literal[
    "xgboost",
    "logistic_regression",
    "random_forest",
    "gradient_boosting",
    "linear_regression",
    "ridge",
]
MetricName = Literal["roc_auc", "f1", "accuracy", "log_loss", "rmse", "mae", "r2"]

ESTIMATORS_BY_TASK: dict[str, set[str]] = {
    "classification": {"xgboost", "logistic_regression", "random_forest", "gradient_boosting"},
    "regression": {"xgboost", "random_forest", "gradient_boosting", "linear_regression", "ridge"},
}
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("roc_auc", "f1", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
MAXIMIZED = {"roc_auc", "f1", "accuracy", "r2"}

_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqlSource(_Strict):
    """A table or query read through SQLAlchemy. ``${VAR}`` in the URL is taken from the environment."""

    url: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self

    def resolved_url(self) -> str:
        return os.path.expandvars(self.url)


class Source(_Strict):
    """Where training data comes from: a path, glob or fsspec URL of Parquet/CSV files; SQL; or a bundled dataset."""

    path: str | None = Field(default=None, description="file, glob or fsspec URL; relative to the project")
    format: Literal["parquet", "csv"] | None = Field(default=None, description="default: from the extension")
    sql: SqlSource | None = None
    sklearn: str | None = Field(default=None, description="a dataset bundled with scikit-learn, e.g. breast_cancer")
    # A file of the source glob that cannot be read or does not validate: fail the train (the default), or skip it
    # and train on the rest. Either way it is named with the rule it broke; a source file is never moved.
    on_unreadable: Literal["fail", "skip"] = Field(default="fail", description="fail or skip a bad source file")

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [name for name in ("path", "sql", "sklearn") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'path', 'sql' or 'sklearn' (got {given or 'none'})")
        return self

    def describe(self) -> str:
        if self.path is not None:
            return self.path
        if self.sql is not None:
            return f"sql:{self.sql.table or 'query'}"
        return f"sklearn:{self.sklearn}"


class Features(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _non_empty_and_disjoint(self) -> Features:
        if not self.numeric and not self.categorical:
            raise ValueError("declare at least one numeric or categorical feature")
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"a column is either numeric or categorical (both: {both})")
        for group in (self.numeric, self.categorical):
            if len(set(group)) != len(group):
                raise ValueError(f"duplicate column in {group}")
        return self

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class Split(_Strict):
    """A hash split: a row's side depends only on its content and the seed, so a holdout row stays one."""

    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 0
    key: list[str] = Field(default_factory=list, description="columns that decide a row's side (default: all)")


class Estimator(_Strict):
    kind: EstimatorKind
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)


class Metric(_Strict):
    name: MetricName
    direction: Literal["maximize", "minimize"] | None = None

    @model_validator(mode="after")
    def _direction_matches(self) -> Metric:
        natural = "maximize" if self.name in MAXIMIZED else "minimize"
        if self.direction is not None and self.direction != natural:
            raise ValueError(f"{self.name} is to {natural} (got direction '{self.direction}')")
        return self

    @property
    def maximize(self) -> bool:
        return self.name in MAXIMIZED


class Gate(_Strict):
    """When a challenger replaces the champion.

    Both models are scored on the fixed holdout (held-out rows of the source) and, when the run has a window of
    recent batches, on the window's held-out rows. The recent rows decide if there are any, else the fixed holdout:
    the challenger is promoted when the lower confidence bound of its improvement there (a paired bootstrap)
    clears ``min_improvement``, and, when the recent rows decide, it loses no more than ``max_regression`` on the
    fixed holdout.
    """

    min_metric: float | None = Field(
        default=None, description="the challenger must reach this on all its held-out rows (fixed + recent)"
    )
    min_improvement: float = Field(
        default=0.0, ge=0.0, description="the bootstrap lower bound of the improvement must exceed this (metric units)"
    )
    # 0.95: promote only when a gain this large or larger would arise by chance at most 1 time in 20. One-sided,
    # because only "is it better?" decides; the same level marks a challenger as significantly worse.
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0, description="of the bootstrap bounds (one-sided)")
    # 0.10 of the champion's own score on the fixed holdout (0.065 of an accuracy of 0.65; 1.2 of an RMSE of 12.0,
    # in RMSE's units), so one default serves every metric and scale, judged with the bootstrap like the gain: a
    # model adapted to a real label shift must give up on the old rows about what it gains on the new (measured in
    # tests/flows/test_label_shift.py: +0.17 on the recent rows for -0.08 on the old), but it may not forget them.
    max_regression: float = Field(
        default=0.10,
        ge=0.0,
        description="when recent rows decide: the most the challenger may lose on the fixed holdout, "
        "as a fraction of the champion's score there",
    )
    # 1,000 resamples: the 5% quantile's Monte Carlo error is about 0.7% of the spread. Rows are resampled with
    # Poisson weights, in up to 1,000 random groups above 1,000 rows; measured here, the whole gate on 1M held-out
    # rows takes 0.6-0.7 s for roc_auc, 0.4 s for log_loss, under 0.1 s for accuracy, f1 and rmse.
    bootstrap_samples: int = Field(default=1000, ge=100, le=100_000, description="paired bootstrap resamples")
    first_run: Literal["min_metric", "always"] = Field(
        default="min_metric", description="with no champion: accept if min_metric is met, or always"
    )


DriftKind = Literal["feature", "target", "prediction"]
DRIFT_KINDS: tuple[DriftKind, ...] = get_args(DriftKind)


class Drift(_Strict):
    """When a column has drifted: its score clears the noise floor at the batch's size by the effect size asked for.

    A score is a Hellinger distance (0 = same distribution, 1 = disjoint). A sample of n rows drawn from the
    reference itself scores above 0 by chance, the more so the smaller n (measured on real data: 0.34 at 30 rows,
    0.07 at 1,000, 0.04 at 10,000), so a fixed threshold cries wolf on small batches and misses at large ones.
    The threshold at n is the noise floor at n, estimated from the reference, plus ``threshold`` (the effect size
    that matters), added as independent distances add: sqrt(floor(n)^2 + threshold^2).

    The default effect size 0.025 is the Hellinger distance of a 0.07-standard-deviation mean shift or of a 3-point
    change in one of four equal categories' shares: a 0.2 sd shift (0.071) is flagged in 20 of 20 batches from
    2,000 rows up, a 0.02 sd shift (0.007) never, however large the batch (tests/monitoring/test_drift_calibration.py).
    """

    method: Literal["hellinger"] = "hellinger"
    threshold: float = Field(default=0.025, gt=0.0, le=1.0, description="the effect size (Hellinger) that matters")
    columns: dict[str, float] = Field(default_factory=dict, description="per-column effect sizes")
    # 0.02: at most one false alarm in 50 batches whatever the number of columns; a test over 20 batches then
    # sees two or more false alarms less than 6% of the time.
    alpha: float = Field(
        default=0.02, gt=0.0, lt=0.5, description="false-alarm rate per batch (shared by its columns and tests)"
    )
    min_rows: int = Field(
        default=20, ge=5, description="fewer rows than this: columns are insufficient_data, not scored"
    )
    retrain_on: list[DriftKind] = Field(
        default_factory=lambda: list(DRIFT_KINDS),
        description="which kinds of drift count toward a retrain: feature, target (label), prediction",
    )
    min_drifted: int = Field(
        default=1, ge=1, description="retrain when this many of the last `of_last` batches drifted"
    )
    of_last: int = Field(default=1, ge=1)
    cooldown_minutes: float = Field(default=60.0, ge=0.0, description="no new retrain request this soon after one")

    @model_validator(mode="after")
    def _n_of_m(self) -> Drift:
        if self.min_drifted > self.of_last:
            raise ValueError(f"min_drifted ({self.min_drifted}) cannot exceed of_last ({self.of_last})")
        return self

    def effect(self, column: str) -> float:
        """The effect size a column is held to: its own, or the default."""
        return self.columns.get(column, self.threshold)


class Monitor(_Strict):
    """Where new batches land for the monitor flow; processed batches move to the state directory."""

    landing: str | None = Field(default=None, description="glob or fsspec URL (default data/<model>/landing/*)")
    # A file counts as complete once its size and modification time have not changed for this long (an upload
    # that is still being written keeps touching its mtime). 10 s covers a stalled copy; 0 takes files at once.
    settle_seconds: float = Field(default=10.0, ge=0, le=86_400, description="seconds a file must be unchanged")
    ready_marker: str | None = Field(
        default=None, description="a file name (e.g. _SUCCESS): when set, only files in a folder holding it are ready"
    )

    @field_validator("ready_marker")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or "\\" in value or value in (".", "..")):
            raise ValueError(f"must be a plain file name like _SUCCESS, not a path (got {value!r})")
        return value


class Retrain(_Strict):
    """What a retrain trains on and how long one may hold the model's retrain lease."""

    window_batches: int = Field(default=5, ge=0, description="the most recent accepted batches added to the source")
    # 0.5: after drift the recent rows count as much as all of history together, so a retrain adapts to a real shift
    # (five monthly batches would otherwise be outvoted by years of history) without forgetting the rest.
    window_weight: float = Field(
        default=0.5, ge=0.0, lt=1.0, description="share of the training weight the window carries (0: rows alike)"
    )
    lease_minutes: float = Field(default=120.0, gt=0.0, description="a crashed retrain's lease expires after this")


class Serving(_Strict):
    """The servability check before promotion, live-traffic profiling, and the service's optional auth.

    The token itself never appears in the spec: only the name of the environment variable or of the Prefect
    Secret block that holds it.
    """

    check: bool = Field(default=True, description="serve the packaged version and compare it before promoting")
    check_rows: int = Field(default=200, ge=1, description="holdout rows sent to the packaged service")
    latency_budget_ms: float = Field(default=250.0, gt=0.0, description="p95 of single-row requests must stay under")
    tolerance: float = Field(default=1e-6, ge=0.0, description="largest allowed gap to in-process predictions")
    profile_traffic: bool = Field(default=True, description="profile served rows with whylogs, in windows")
    window_minutes: float = Field(default=60.0, gt=0.0, description="length of a live-traffic profile window")
    token_env: str | None = Field(default=None, description="env var holding the bearer token (auth off if unset)")
    token_secret: str | None = Field(default=None, description="Prefect Secret block holding the bearer token")
    max_body_mb: float = Field(default=10.0, gt=0.0, description="largest request body the service reads (else 413)")

    @model_validator(mode="after")
    def _one_token_source(self) -> Serving:
        if self.token_env and self.token_secret:
            raise ValueError("set token_env or token_secret, not both")
        return self


AlertKind = Literal[
    "validation_failed",
    "drift_detected",
    "drift_undecided",
    "model_rejected",
    "model_promoted",
    "rolled_back",
    "run_failed",
    "heartbeat",
]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)


class Notify(_Strict):
    """Who hears about what: Prefect notification blocks by name, never a webhook URL or a token.

    ``driftline deploy`` turns this into Prefect automations (one per alert kind) that send through the blocks.
    """

    blocks: list[str] = Field(
        default_factory=list,
        description='Prefect notification blocks as "<block type>/<name>", e.g. "slack-webhook/fraud-oncall"',
    )
    alerts: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS), description="which alerts to send")
    dedupe_minutes: float = Field(default=60.0, ge=0.0, description="an identical alert is sent once per window")
    heartbeat_minutes: float | None = Field(
        default=None,
        gt=0.0,
        description="alert if the monitor has not run for this long (default: 3 x schedule.monitor_interval_minutes)",
    )

    @field_validator("blocks")
    @classmethod
    def _slugs(cls, blocks: list[str]) -> list[str]:
        for block in blocks:
            if not re.fullmatch(r"[a-z0-9-]+/[A-Za-z0-9_.-]+", block):
                raise ValueError(f'{block!r} must be "<block type>/<block name>", e.g. "slack-webhook/fraud-oncall"')
        return blocks


class Schedule(_Strict):
    retrain_cron: str | None = None
    monitor_interval_minutes: int | None = Field(default=None, gt=0)
    timezone: str = "UTC"


class ModelSpec(_Strict):
    """One model: its data, its suite, how it is trained and judged, and how it is watched."""

    name: str
    description: str = ""
    task: TaskKind
    target: str
    positive_label: str | int | bool | None = Field(default=None, description="binary classification only")
    timestamp: str | None = Field(default=None, description="event-time column, not a feature")
    suite: str | None = Field(default=None, description="file in expectations/ (default <name>.json)")
    source: Source
    features: Features
    split: Split = Field(default_factory=Split)
    estimator: Estimator
    metric: Metric
    gate: Gate = Field(default_factory=Gate)
    drift: Drift = Field(default_factory=Drift)
    monitor: Monitor = Field(default_factory=Monitor)
    retrain: Retrain = Field(default_factory=Retrain)
    serving: Serving = Field(default_factory=Serving)
    schedule: Schedule = Field(default_factory=Schedule)
    notify: Notify = Field(default_factory=Notify)

    # Not part of the file: where the spec came from, so paths resolve and errors can name it.
    spec_path: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (a BentoML model name)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        features = self.features.columns
        if self.target in features:
            raise ValueError(f"target '{self.target}' cannot also be a feature")
        if self.timestamp is not None and self.timestamp in features:
            raise ValueError(f"timestamp '{self.timestamp}' cannot also be a feature")
        if self.estimator.kind not in ESTIMATORS_BY_TASK[self.task]:
            allowed = ", ".join(sorted(ESTIMATORS_BY_TASK[self.task]))
            raise ValueError(f"estimator.kind '{self.estimator.kind}' is not for {self.task} (use one of {allowed})")
        if self.metric.name not in METRICS_BY_TASK[self.task]:
            allowed = ", ".join(METRICS_BY_TASK[self.task])
            raise ValueError(f"metric.name '{self.metric.name}' is not for {self.task} (use one of {allowed})")
        unknown = sorted(set(self.drift.columns) - set(features) - {self.target, "prediction"})
        if unknown:
            raise ValueError(
                f"drift.columns names columns that are not features, the target or 'prediction': {unknown}"
            )
        unknown_keys = sorted(set(self.split.key) - set(self.columns))
        if unknown_keys:
            raise ValueError(f"split.key names columns the spec does not declare: {unknown_keys}")
        if self.positive_label is not None and self.task != "classification":
            raise ValueError("positive_label is for classification only")
        return self

    @property
    def columns(self) -> list[str]:
        """Every column the model reads: features, target and the timestamp if any."""
        extra = [self.timestamp] if self.timestamp else []
        return [*self.features.columns, self.target, *extra]

    @property
    def project_dir(self) -> Path:
        if self.spec_path is not None:
            return self.spec_path.resolve().parent.parent
        return get_settings().project_dir

    @property
    def suite_path(self) -> Path:
        return self.project_dir / "expectations" / (self.suite or f"{self.name}.json")

    def resolve(self, path: str) -> str:
        """Resolve a relative local path against the project; URLs and absolute paths pass unchanged."""
        if "://" in path or Path(path).is_absolute():
            return path
        return str(self.project_dir / path)

    @property
    def landing(self) -> str:
        return self.resolve(self.monitor.landing or f"data/{self.name}/landing/*")

    @property
    def label(self) -> str:
        return str(self.spec_path) if self.spec_path else f"spec '{self.name}'"


def _format_errors(error: ValidationError, where: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            rule = "unknown key (check the spelling; see README.md for the spec format)"
        elif item["type"] == "missing":
            rule = "required key is missing"
        else:
            rule = item["msg"].removeprefix("Value error, ")
            if "input" in item and not isinstance(item["input"], dict):
                rule += f" (got {item['input']!r})"
        lines.append(f"  {key}: {rule}")
    return f"{where}: invalid model spec\n" + "\n".join(lines)


def parse_spec(data: dict[str, Any], spec_path: Path | None = None) -> ModelSpec:
    """Validate a spec from a dict, naming the file and key of every broken rule."""
    where = str(spec_path) if spec_path else "model spec"
    try:
        return ModelSpec.model_validate({**data, "spec_path": spec_path})
    except ValidationError as error:
        raise SpecError(_format_errors(error, where)) from None


def spec_file(name: str) -> Path:
    return get_settings().specs_dir / f"{name}.toml"


def load_spec(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> ModelSpec:
    """Load ``deployments/<name>.toml`` (or a path to a TOML file), apply dotted-key overrides, validate."""
    candidate = Path(name_or_path)
    path = candidate if candidate.suffix == ".toml" else spec_file(str(name_or_path))
    if not path.is_file():
        known = ", ".join(sorted(list_models())) or "none"
        raise SpecError(f"{path}: no such model spec (models in {path.parent}: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from None
    if overrides:
        data = apply_overrides(data, overrides, path)
    spec = parse_spec(data, path.resolve())
    if candidate.suffix != ".toml" and spec.name != str(name_or_path):
        raise SpecError(f"{path}: name must match the file name '{name_or_path}' (got '{spec.name}')")
    return spec


def list_models() -> list[str]:
    specs_dir = get_settings().specs_dir
    return sorted(path.stem for path in specs_dir.glob("*.toml")) if specs_dir.is_dir() else []


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], where: Path | str) -> dict[str, Any]:
    """Set dotted keys (``estimator.params.max_depth``) on a copy of the raw spec; the result is validated after."""
    result = copy.deepcopy(data)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"{where}: override '{dotted}': '{part}' is a value, not a table")
            node = child
        node[parts[-1]] = value
    return result


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` with the value read as TOML (numbers, booleans, strings, arrays)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"override '{text}': must be KEY=VALUE, e.g. estimator.params.max_depth=3")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def heartbeat_minutes(spec: ModelSpec) -> float | None:
    """How long the monitor may stay silent before the dead-man's alert: the spec's, or 3 monitor intervals."""
    if spec.notify.heartbeat_minutes is not None:
        return spec.notify.heartbeat_minutes
    interval = spec.schedule.monitor_interval_minutes
    return 3.0 * interval if interval else None


def training_digest(spec: ModelSpec, suite_digest: str) -> str:
    """Digest the spec parts that decide what is trained (task, target, features, split, estimator, metric,
    positive label, the window's weight) and the suite that admits the data.

    Two runs with this digest, the same data fingerprint and the same code train the same model: the second is
    ``unchanged``. The gate, drift, schedule and notification keys change how a model is judged or watched, not
    the model, so they are left out.
    """
    import hashlib
    import json

    parts = spec.model_dump(
        mode="json", include={"task", "target", "features", "split", "estimator", "metric", "positive_label"}
    )
    # The window's weight changes the fitted model whenever a window is used.
    parts["window_weight"] = spec.retrain.window_weight
    text = json.dumps({**parts, "suite_digest": suite_digest}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
