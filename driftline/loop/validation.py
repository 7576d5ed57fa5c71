"""Great Expectations 1.x validation of a batch against ``expectations/<suite>.json``.

Suites stay in GX's own serialised form, so users edit them with GX's tools. Loading counts the entries: GX drops
or rejects unknown expectation types, and a suite that silently checks less than its file says is an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline import libs
from driftline.errors import SpecError
from driftline.libs import lazy_module
from driftline.loop.data import Batch
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")


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


def validate(batch: Batch, spec: ModelSpec, *, chunk_rows: int | None = None) -> ValidationReport:
    """Check that the batch has the spec's columns, then run the suite on it; never raises on bad data.

    A lazy batch (a big Parquet file) is validated chunk by chunk (``chunked``): the report is the one whole-frame
    validation gives.
    """
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
        if column not in batch.columns
    ]
    if batch.lazy:
        verdicts, frame = chunked(batch, suite, chunk_rows)
    else:
        frame = batch.frame
        verdicts = _in_suite_order(suite, [Verdict.of(item) for item in _run(frame, suite).results])
    for verdict in verdicts:
        kwargs = {k: v for k, v in verdict.kwargs.items() if k != "batch_id"}
        outcomes.append(
            ExpectationOutcome(
                expectation=verdict.expectation,
                column=kwargs.get("column"),
                success=verdict.success,
                observed=_observed(verdict.result, verdict.exception, frame, kwargs, verdict.success),
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


def _in_suite_order(suite: Any, verdicts: list[Verdict]) -> list[Verdict]:
    """GX returns results in an order of its own; a report lists them as the suite file does."""

    def key(kind: str, kwargs: dict[str, Any]) -> str:
        return json.dumps([kind, {k: v for k, v in kwargs.items() if k != "batch_id"}], sort_keys=True, default=str)

    waiting: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        waiting.setdefault(key(verdict.expectation, verdict.kwargs), []).append(verdict)
    ordered = []
    for expectation in suite.expectations:
        config = expectation.configuration
        queue = waiting.get(key(config.type, dict(config.kwargs)))
        if queue:
            ordered.append(queue.pop(0))
    leftover = [verdict for queue in waiting.values() for verdict in queue]
    return ordered + leftover


def _run(frame: pd.DataFrame, suite: Any) -> Any:
    return _batch_definition().get_batch(batch_parameters={"dataframe": _for_gx(frame)}).validate(suite)


@dataclass(frozen=True)
class Verdict:
    """One expectation's result as GX gives it (``result``: GX's SUMMARY result dict)."""

    expectation: str
    kwargs: dict[str, Any]
    success: bool
    result: dict[str, Any]
    exception: dict[str, Any] | None

    @classmethod
    def of(cls, item: Any) -> Verdict:
        config = item.expectation_config
        exception = item.exception_info if isinstance(item.exception_info, dict) else None
        if exception and "raised_exception" not in exception:
            # GX nests exception info by metric id when several metrics failed; keep the first.
            exception = next(iter(exception.values()), None)
        raised = exception if exception and exception.get("raised_exception") else None
        return cls(config.type, dict(config.kwargs), bool(item.success), dict(item.result or {}), raised)


# Aggregates combined across chunks, by the GX metric each expectation checks.
_AGGREGATES = {
    "expect_table_row_count_to_be_between": "table.row_count",
    "expect_column_mean_to_be_between": "column.mean",
    "expect_column_min_to_be_between": "column.min",
    "expect_column_max_to_be_between": "column.max",
}
# Expectations about the table's columns, not its rows: checked on the head of the batch (every column).
_SCHEMA = {
    "expect_column_to_exist",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
}
HEAD_ROWS = 1000
# Rows per chunk validated: each GX run costs ~0.3 s on top of the rows, so chunks are large (the fraud suite's
# columns of 1M rows are ~100 MB); memory stays flat in the batch's rows all the same.
VALIDATION_CHUNK_ROWS = 1_048_576


def chunked(batch: Batch, suite: Any, chunk_rows: int | None = None) -> tuple[list[Verdict], pd.DataFrame]:
    """Validate a batch chunk by chunk (only the columns the suite names) and combine, as GX would on the whole.

    Map expectations (row by row: in a set, between, not null, ...) sum their counts over the chunks, keep the first
    unexpected values in row order, and apply ``mostly`` to the totals; row count, mean, min and max combine their
    chunks' values; expectations on the table's columns look at the head (every column); any other expectation is
    validated on the whole of its column(s), the other columns left in the file. GX's own ``_validate`` judges each
    combined value, so thresholds, ``mostly`` and strictness mean what they mean in GX.

    Returns the verdicts, in the suite's order, and the batch's head (for messages).
    """
    from great_expectations.expectations.expectation import ColumnMapExpectation

    expectations = list(suite.expectations)
    head = next(batch.frames(chunk_rows=HEAD_ROWS))
    kinds = [_kind(expectation, ColumnMapExpectation) for expectation in expectations]
    rowwise = [e for e, kind in zip(expectations, kinds, strict=True) if kind in ("map", "aggregate")]
    columns = sorted({c for e in rowwise for c in _columns_of(e) if c in batch.columns})
    parts: list[list[tuple[Verdict, int]]] = [[] for _ in rowwise]
    if rowwise:
        chunk_suite = _suite_of(rowwise)
        frames = batch.frames(columns, chunk_rows or VALIDATION_CHUNK_ROWS)
        for frame in frames:
            results = [Verdict.of(item) for item in _run(frame, chunk_suite).results]
            for index, verdict in enumerate(_in_suite_order(chunk_suite, results)):
                parts[index].append((verdict, _weight(rowwise[index], frame)))
    combined = iter(_combine(e, p) for e, p in zip(rowwise, parts, strict=True))
    verdicts = []
    for expectation, kind in zip(expectations, kinds, strict=True):
        if kind in ("map", "aggregate"):
            verdicts.append(next(combined))
        elif kind == "schema":
            verdicts.append(Verdict.of(_run(head, _suite_of([expectation])).results[0]))
        else:
            own = [c for c in _columns_of(expectation) if c in batch.columns]
            whole = pd.concat(list(batch.frames(own)), ignore_index=True) if own else head
            verdicts.append(Verdict.of(_run(whole, _suite_of([expectation])).results[0]))
    return verdicts, head


def _kind(expectation: Any, map_class: type) -> str:
    kind = str(expectation.expectation_type)
    if kind in _SCHEMA:
        return "schema"
    if kind in _AGGREGATES:
        return "aggregate"
    if isinstance(expectation, map_class) and getattr(expectation, "row_condition", None) is None:
        return "map"
    return "whole"


def _columns_of(expectation: Any) -> list[str]:
    kwargs = expectation.configuration.kwargs
    named = [kwargs.get(key) for key in ("column", "column_A", "column_B")]
    named += list(kwargs.get("column_list") or [])
    return [str(c) for c in named if c is not None]


def _suite_of(expectations: list[Any]) -> Any:
    from great_expectations.core import ExpectationSuite

    configs = [e.configuration.to_json_dict() for e in expectations]
    entries = [{"type": c["type"], "kwargs": c.get("kwargs", {}), "meta": c.get("meta") or {}} for c in configs]
    return ExpectationSuite(name="driftline-chunk", expectations=entries)


def _weight(expectation: Any, frame: pd.DataFrame) -> int:
    """How many values of a chunk a mean stands for (its non-missing values); rows otherwise."""
    column = expectation.configuration.kwargs.get("column")
    if expectation.expectation_type == "expect_column_mean_to_be_between" and column in frame.columns:
        return int(frame[column].count())
    return len(frame)


def _combine(expectation: Any, parts: list[tuple[Verdict, int]]) -> Verdict:
    """One verdict from a row-wise expectation's verdicts on each chunk, judged by GX's own ``_validate``."""
    first = parts[0][0]
    failed = next((verdict for verdict, _ in parts if verdict.exception), None)
    if failed is not None:
        return failed  # the column is missing or of the wrong type: every chunk says so, the first is enough
    kind = str(expectation.expectation_type)
    if kind in _AGGREGATES:
        metrics = {_AGGREGATES[kind]: _aggregate(kind, parts)}
    else:
        metrics = _map_metrics(expectation, [verdict.result for verdict, _ in parts])
    judged = expectation._validate(metrics=metrics, runtime_configuration={"result_format": "SUMMARY"})
    return Verdict(first.expectation, first.kwargs, bool(judged["success"]), dict(judged.get("result") or {}), None)


def _aggregate(kind: str, parts: list[tuple[Verdict, int]]) -> Any:
    if kind == "expect_table_row_count_to_be_between":
        return sum(weight for _, weight in parts)
    values = [(verdict.result.get("observed_value"), weight) for verdict, weight in parts]
    present = [(value, weight) for value, weight in values if value is not None and not pd.isna(value)]
    if not present:
        return None
    if kind == "expect_column_min_to_be_between":
        return min(value for value, _ in present)
    if kind == "expect_column_max_to_be_between":
        return max(value for value, _ in present)
    total = sum(weight for _, weight in present)
    mean = math.fsum(float(value) * weight for value, weight in present) / total
    return type(present[0][0])(mean)  # GX's own type (numpy's float), so messages quote it the same way


def _map_metrics(expectation: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics a map expectation's ``_validate`` reads, summed over chunks (unexpected values: the first 20)."""
    metric = expectation.map_metric
    rows = sum(int(result.get("element_count") or 0) for result in results)
    missing = sum(int(result.get("missing_count") or 0) for result in results)
    unexpected = sum(int(result.get("unexpected_count") or 0) for result in results)
    values = [value for result in results for value in result.get("partial_unexpected_list") or []][:20]
    return {
        "table.row_count": rows,
        "column_values.nonnull.unexpected_count": missing,
        f"{metric}.unexpected_count": unexpected,
        f"{metric}.unexpected_values": values,
    }


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
