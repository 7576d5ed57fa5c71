"""Great Expectations 1.x validation of a batch against ``expectations/<suite>.json``.

Suites stay in GX's own serialised form, so users edit them with GX's tools. Loading counts the entries: GX drops
or rejects unknown expectation types, and a suite that silently checks less than its file says is an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from driftline import libs
from driftline.errors import SpecError
from driftline.loop.data import Batch
from driftline.spec import ModelSpec


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict on one batch."""

    expectation: str
    column: str | None
    success: bool
    observed: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        rule = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items() if k != "column" and v is not None)
        rule = rule if len(rule) <= 120 else rule[:117] + "..."
        return f"{where}: {self.expectation}({rule}) failed: {self.observed}"


@dataclass(frozen=True)
class ValidationReport:
    """The verdict of a suite on a batch, with every expectation's outcome."""

    origin: str
    fingerprint: str
    suite: str
    suite_digest: str
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def success(self) -> bool:
        return all(outcome.success for outcome in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.success]

    def summary(self) -> str:
        total = len(self.outcomes)
        if self.success:
            return f"{self.origin}: passed {total} expectations of {self.suite}"
        lines = [f"{self.origin}: failed {len(self.failures)} of {total} expectations of {self.suite}"]
        lines += [f"  - {outcome.describe()}" for outcome in self.failures]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "fingerprint": self.fingerprint,
            "suite": self.suite,
            "suite_digest": self.suite_digest,
            "success": self.success,
            "outcomes": [outcome.__dict__ for outcome in self.outcomes],
        }


def suite_digest(path: Path) -> str:
    """A digest of the suite's content (canonical JSON), independent of formatting."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def load_suite(path: Path) -> Any:
    """Load a GX 1.x suite from its JSON form, failing with the entry's index and type if GX would drop it."""
    if not path.is_file():
        raise SpecError(f"{path}: expectation suite not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SpecError(f"{path}: not valid JSON: {error}") from None
    entries = data.get("expectations") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"{path}: must be a GX suite with a non-empty 'expectations' list")

    libs.great_expectations()
    from great_expectations.core import ExpectationSuite

    def build(expectations: list[Any]) -> Any:
        # GX logs a traceback for each entry it drops; driftline raises its own error naming the entry instead.
        gx_logger = logging.getLogger("great_expectations")
        level = gx_logger.level
        gx_logger.setLevel(logging.CRITICAL)
        try:
            return ExpectationSuite(
                name=data.get("name") or path.stem, expectations=expectations, meta=data.get("meta") or {}
            )
        finally:
            gx_logger.setLevel(level)

    def first_bad() -> str:
        for index, entry in enumerate(entries):
            kind = entry.get("type") if isinstance(entry, dict) else None
            try:
                if len(build([entry]).expectations) == 1:
                    continue
                return f"expectations[{index}] ({kind}): unknown expectation type"
            except Exception as error:  # GX raises several types for a bad entry
                return f"expectations[{index}] ({kind}): {error}"
        return "an entry GX could not load"

    try:
        suite = build(entries)
    except Exception:  # name the entry rather than surface GX's exception
        raise SpecError(f"{path}: GX cannot load {first_bad()}") from None
    if len(suite.expectations) != len(entries):
        raise SpecError(
            f"{path}: {len(entries)} expectations in the file but GX loaded {len(suite.expectations)}; "
            f"first dropped: {first_bad()}"
        )
    return suite


@cache
def _batch_definition() -> Any:
    gx = libs.great_expectations()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX logs an INFO line per ephemeral context about a docs site driftline never builds.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("driftline")
    return source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole")


def _short(value: Any, limit: int = 80) -> Any:
    """An example value as quoted in a message: a long text is cut (a 1 MB field would flood every log and alert)."""
    text = value if isinstance(value, str) else None
    if text is None or len(text) <= limit:
        return value
    return f"{text[:limit]}… ({len(text)} characters)"


def _observed(
    result: dict[str, Any],
    exception: dict[str, Any] | None,
    frame: pd.DataFrame,
    kwargs: dict[str, Any],
    success: bool,
) -> str:
    """What the data showed, in plain words: GX's own wording only where no plainer one applies."""
    column = kwargs.get("column")
    if isinstance(column, str) and column not in frame.columns:
        return "the column is missing"  # GX says "failed: ok" or that BatchData lacks it, once per expectation
    if exception and exception.get("raised_exception"):
        if isinstance(column, str) and _numeric_bound(kwargs) and not pd.api.types.is_numeric_dtype(frame[column]):
            examples = list(dict.fromkeys(map(str, frame[column].dropna().head(50))))[:3]
            return f"text where a number is expected (dtype {frame[column].dtype}, e.g. {examples})"
        return f"error: {str(exception.get('exception_message', '')).strip()}"
    if "unexpected_count" in result:
        count = result.get("unexpected_count") or 0
        total = result.get("element_count") or 0
        counted = [item["value"] for item in result.get("partial_unexpected_counts") or []]
        examples = (counted or list(dict.fromkeys(map(str, result.get("partial_unexpected_list") or []))))[:5]
        return f"{count} of {total} values unexpected, e.g. {[_short(example) for example in examples]}"
    if "observed_value" in result:
        return f"observed {result['observed_value']!r}"
    if not result:
        return "ok" if success else "failed, with no detail from Great Expectations"
    return json.dumps(result, default=str)[:200]


def _numeric_bound(kwargs: dict[str, Any]) -> bool:
    """Whether the expectation compares values with a number (min_value/max_value and the like)."""
    bounds = [value for key, value in kwargs.items() if key.endswith("_value") or key in ("min_value", "max_value")]
    return any(isinstance(value, int | float) and not isinstance(value, bool) for value in bounds)


def validate(batch: Batch, spec: ModelSpec) -> ValidationReport:
    """Check that the batch has the spec's columns, then run the suite on it; never raises on bad data."""
    path = spec.suite_path
    suite = load_suite(path)
    outcomes = [
        ExpectationOutcome(
            expectation="driftline_column_declared_in_spec_exists",
            column=column,
            success=False,
            observed=f"column missing (found {batch.columns})",
        )
        for column in spec.columns
        if column not in batch.frame.columns
    ]
    result = _batch_definition().get_batch(batch_parameters={"dataframe": _for_gx(batch.frame)}).validate(suite)
    for item in result.results:
        config = item.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        exception = item.exception_info if isinstance(item.exception_info, dict) else None
        if exception and "raised_exception" not in exception:
            # GX nests exception info by metric id when several metrics failed; keep the first.
            exception = next(iter(exception.values()), None)
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=kwargs.get("column"),
                success=bool(item.success),
                observed=_observed(item.result or {}, exception, batch.frame, kwargs, bool(item.success)),
                kwargs=json.loads(json.dumps(kwargs, default=str)),
            )
        )
    return ValidationReport(
        origin=batch.origin,
        fingerprint=batch.fingerprint,
        suite=str(path.name),
        suite_digest=suite_digest(path),
        outcomes=tuple(outcomes),
    )


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    # GX 1.24 cannot type-check pandas' categorical dtype consistently; validate the values as plain objects.
    categorical = [c for c, t in frame.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
    return frame.astype({c: object for c in categorical}) if categorical else frame


@dataclass(frozen=True)
class Validated:
    """A training run's batches with their validation reports: the source's (history) and the recent window's."""

    history: list[tuple[Batch, ValidationReport]]
    recent: list[tuple[Batch, ValidationReport]]

    @property
    def reports(self) -> list[ValidationReport]:
        return [report for _, report in self.history + self.recent]

    @property
    def failed_history(self) -> list[tuple[Batch, ValidationReport]]:
        """The source's failing batches: any of them fails the run."""
        return [(batch, report) for batch, report in self.history if not report.success]

    @property
    def failed_recent(self) -> list[tuple[Batch, ValidationReport]]:
        """The window's failing batches: each leaves the window, the run goes on."""
        return [(batch, report) for batch, report in self.recent if not report.success]

    @property
    def passed_recent(self) -> list[Batch]:
        return [batch for batch, report in self.recent if report.success]

    @property
    def training(self) -> list[Batch]:
        """The batches a run trains on: the source's, then the window's that passed."""
        return [batch for batch, _ in self.history] + self.passed_recent

    @property
    def recent_rows(self) -> int:
        return sum(batch.rows for batch in self.passed_recent)

    @property
    def suite_digest(self) -> str:
        return self.history[0][1].suite_digest


def validate_all(history: list[Batch], recent: list[Batch], spec: ModelSpec) -> Validated:
    """Validate a training run's source batches and recent-window batches against the model's suite."""
    return Validated(
        history=[(batch, validate(batch, spec)) for batch in history],
        recent=[(batch, validate(batch, spec)) for batch in recent],
    )
