"""Drift scores calibrated to the batch's size: a column drifts when its score clears its noise floor at n.

Every score is a Hellinger distance (0 = same distribution, 1 = disjoint) on buckets fixed by the reference:

- categorical columns: the reference's categories, missing values, and everything else ("(other)");
- numeric columns, two tests on the reference's twenty quantile bins (plus missing values):
  *shape*, the Hellinger distance on the bins merged to k(n) buckets (few buckets for few rows, where each extra
  bucket adds noise), and *location*, the shift of the batch's mean normal score (each value's rank in the
  reference mapped through the inverse normal CDF: a van der Waerden statistic, distribution-free yet as powerful
  as a t-test for a moved column, which no binned distance is at 30 rows), expressed as the Hellinger distance of
  a normal mean shift of that size, so one effect size governs both.

A sample drawn from the reference scores above 0 by chance, the more so the smaller it is. Each test's *noise
floor* at n is its score's (1 - alpha/m) quantile under the reference (m: the number of tests in the batch, so the
false-alarm rate is per batch, not per column), computed once per reference (:func:`calibrate`) and kept beside
it. The threshold is the floor plus the spec's effect size, added as independent distances add:
``sqrt(floor(n)^2 + effect^2)``: at 30 rows it is mostly the floor, at 10 million rows the effect size.

A column with fewer than ``drift.min_rows`` rows is ``insufficient_data``; one that cannot be scored (all values
missing, numbers that are not numbers) is ``unscorable``. Neither is ever counted as ``ok``.

No Prefect here; whylogs is reached only through :mod:`driftline.profiles`.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from driftline.libs import lazy_module
from driftline.loop import profiles
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")

MISSING = "(missing)"
OTHER = "(other)"
PREDICTION = "prediction"  # the column the service, the scoring flow and the monitor profile predictions under

Status = Literal["drift", "ok", "insufficient_data", "unscorable"]
STATUSES: tuple[Status, ...] = ("drift", "ok", "insufficient_data", "unscorable")
CALIBRATION_VERSION = 1

# Reference quantile bins of a numeric column; merged to k(n) buckets for a batch of n rows.
FINE_BINS = 20
# Batch sizes the noise floor is tabulated at; above the last, the asymptotic chi-square law holds.
GRID = (5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1_000, 2_000, 5_000)
# Share of a batch's false-alarm budget given to the location test of a numeric column (the shape test gets the
# rest): a moved column is the drift that matters most, and at 30 rows only the rank test can see it.
LOCATION_SHARE = 0.8
# KLL sketches (k=1024) place a rank within about 0.1% (one standard deviation): at 10M rows that, not sampling,
# sets the floor. It acts like a second sample of this many rows.
SKETCH_ROWS = 400_000
_DRAWS = 4_000  # Monte Carlo draws per tabulated size; the quantile comes from a fitted scaled chi-square


@dataclass(frozen=True)
class Test:
    """One statistic on one column: its score, its noise floor at the batch's size, and the threshold."""

    statistic: str  # "shape" (binned Hellinger) or "location" (normal-score shift, on the Hellinger scale)
    score: float
    floor: float
    threshold: float

    @property
    def over(self) -> float:
        return self.score / self.threshold if self.threshold > 0 else math.inf


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict against the reference, with the numbers behind it."""

    column: str
    kind: str  # numeric or categorical
    role: str  # feature, target or prediction
    status: Status
    score: float | None  # the deciding test's score (the one furthest over, or nearest to, its threshold)
    threshold: float | None
    floor: float | None
    effect: float  # the spec's effect size for this column
    rows: int
    method: str = "hellinger"
    statistic: str | None = None
    tests: tuple[Test, ...] = ()
    note: str = ""

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnDrift:
        """A column verdict as ``DriftReport.as_dict`` stores it.

        Verdicts stored before statuses existed hold only a score against a fixed threshold (the effect size): the
        status is what it meant then (drift when the score reached the threshold), the role is feature.
        """
        score, threshold = data.get("score"), data.get("threshold")
        status: Status = data.get("status") or (
            "unscorable" if score is None else "drift" if threshold is not None and score >= threshold else "ok"
        )
        return cls(
            column=data["column"],
            kind=data.get("kind", ""),
            role=data.get("role", "feature"),
            status=status,
            score=score,
            threshold=threshold,
            floor=data.get("floor"),
            effect=data.get("effect", threshold if threshold is not None else 0.0),
            rows=data.get("rows", 0),
            method=data.get("method", "hellinger"),
            statistic=data.get("statistic"),
            tests=tuple(Test(**test) for test in data.get("tests") or ()),
            note=data.get("note", ""),
        )


@dataclass(frozen=True)
class DriftReport:
    """Every monitored column of one batch (or traffic window) against the reference profile."""

    model: str
    version: str
    batch: str
    reference: str
    rows: int
    columns: tuple[ColumnDrift, ...]
    alpha: float = 0.02
    tests: int = 0
    report_path: str | None = None
    legacy: bool = False  # read from a record stored before statuses existed (see ColumnDrift.from_dict)

    @property
    def drifted(self) -> list[ColumnDrift]:
        return sorted((c for c in self.columns if c.drifted), key=lambda c: -(c.score or 0.0))

    @property
    def detected(self) -> bool:
        return bool(self.drifted)

    def kinds(self) -> list[str]:
        """The kinds of drift seen: feature, target, prediction."""
        return [role for role in ("feature", "target", "prediction") if any(c.role == role for c in self.drifted)]

    def undecided(self) -> list[ColumnDrift]:
        """Columns that could not be decided: too few rows, or not scorable."""
        return [c for c in self.columns if c.status in ("insufficient_data", "unscorable")]

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.columns) for status in STATUSES}

    def summary(self) -> str:
        undecided = self.undecided()
        tail = ""
        if undecided:
            tail = "; not decided: " + ", ".join(f"{c.column} ({c.status})" for c in undecided)
        if not self.detected:
            scored = [c for c in self.columns if c.status == "ok" and c.score is not None and c.threshold]
            top = max(scored, key=lambda c: (c.score or 0.0) / (c.threshold or 1.0), default=None)
            worst = f"; closest {top.column} {top.score:.3f} < {top.threshold:.3f}" if top else ""
            where = f"{self.model}:{self.version}: no drift in {len(scored)} scored columns at {self.rows} rows"
            return f"{where}{worst}{tail}"
        parts = ", ".join(f"{c.column} ({c.role}) {c.score:.3f} >= {c.threshold:.3f}" for c in self.drifted)
        return (
            f"{self.model}:{self.version}: drift in {len(self.drifted)} of {len(self.columns)} columns "
            f"at {self.rows} rows: {parts}{tail}"
        )

    def as_dict(self) -> dict[str, Any]:
        stored = asdict(self) | {
            "drifted": [c.column for c in self.drifted],
            "kinds": self.kinds(),
            "statuses": self.counts(),
        }
        if not self.legacy:
            del stored["legacy"]  # reports scored today are stored as they always were
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """A report as :meth:`as_dict` stores it (the derived keys drifted, kinds and statuses are recomputed).

        Reports stored before statuses existed read too, marked ``legacy``; they lack alpha and the test count.
        """
        columns = data.get("columns") or []
        legacy = bool(data.get("legacy")) or any("status" not in column for column in columns)
        return cls(
            model=data["model"],
            version=data["version"],
            batch=data["batch"],
            reference=data["reference"],
            rows=data["rows"],
            columns=tuple(ColumnDrift.from_dict(column) for column in columns),
            alpha=data.get("alpha", 0.02),
            tests=data.get("tests", 0),
            report_path=data.get("report_path"),
            legacy=legacy,
        )


def monitored_columns(spec: ModelSpec, with_prediction: bool = False) -> dict[str, tuple[str, str]]:
    """The columns drift is scored on: ``{column: (kind, role)}`` for the features, the target, the prediction."""
    columns = {c: ("numeric", "feature") for c in spec.features.numeric}
    columns |= {c: ("categorical", "feature") for c in spec.features.categorical}
    label_kind = "categorical" if spec.task == "classification" else "numeric"
    columns[spec.target] = (label_kind, "target")
    if with_prediction:
        columns[PREDICTION] = (label_kind, "prediction")
    return columns


# -- the reference's side: buckets and noise floors, computed once per reference --------------------------------


@dataclass(frozen=True)
class ColumnReference:
    """A column of the reference reduced to what scoring needs: its buckets, shares and noise floors."""

    column: str
    kind: str
    role: str
    rows: int
    labels: tuple[str, ...] = ()  # categorical buckets (categories, missing, other)
    edges: tuple[float, ...] = ()  # numeric: the reference's quantile edges (fine bins), ties merged
    shares: tuple[float, ...] = ()  # reference share per bucket (numeric: fine bins, then missing)
    shape: dict[int, float] = field(default_factory=dict)  # tabulated quantile of 8n*H^2 per batch size
    location_sd: float = 0.0  # standard deviation of one value's normal score under the reference
    unscorable: str = ""


@dataclass(frozen=True)
class Calibration:
    """The noise floors of a reference profile, for a spec's columns and false-alarm rate."""

    version: int
    alpha: float
    tests: int
    columns: dict[str, ColumnReference]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        columns = {
            name: ColumnReference(
                **{
                    **value,
                    "labels": tuple(value["labels"]),
                    "edges": tuple(value["edges"]),
                    "shares": tuple(value["shares"]),
                    "shape": {int(n): float(q) for n, q in value["shape"].items()},
                }
            )
            for name, value in data["columns"].items()
        }
        return cls(data["version"], data["alpha"], data["tests"], columns)

    def fits(self, spec: ModelSpec, columns: dict[str, tuple[str, str]]) -> bool:
        """Whether this calibration was made for these columns and this false-alarm rate."""
        return (
            self.version == CALIBRATION_VERSION
            and math.isclose(self.alpha, spec.drift.alpha)
            and set(self.columns) == set(columns)
            and all(self.columns[c].kind == kind for c, (kind, _) in columns.items())
        )


def count_tests(columns: dict[str, tuple[str, str]]) -> int:
    """How many tests a batch runs: two per numeric column (shape, location), one per categorical."""
    return sum(2 if kind == "numeric" else 1 for kind, _ in columns.values())


def calibrate(reference_view: Any, spec: ModelSpec, columns: dict[str, tuple[str, str]]) -> Calibration:
    """Tabulate each column's noise floor at the grid's batch sizes from the reference profile itself."""
    tests = count_tests(columns)
    alpha = spec.drift.alpha
    reference_columns = reference_view.get_columns()
    result = {}
    for column, (kind, role) in columns.items():
        view = reference_columns.get(column)
        if view is None:
            result[column] = ColumnReference(column, kind, role, 0, unscorable="not in the reference profile")
            continue
        if kind == "categorical":
            result[column] = _calibrate_categorical(column, role, view, alpha / tests)
        else:
            result[column] = _calibrate_numeric(column, role, view, alpha * (1 - LOCATION_SHARE) / tests)
    return Calibration(CALIBRATION_VERSION, alpha, tests, result)


def _rows(view: Any) -> tuple[int, int]:
    """(rows, missing) of a column profile."""
    counts = view.get_metric("counts")
    if counts is None:
        return 0, 0
    return int(counts.n.value), int(counts.null.value)


def _calibrate_categorical(column: str, role: str, view: Any, level: float) -> ColumnReference:
    rows, _ = _rows(view)
    shares = category_shares(view)
    if not shares or set(shares) == {MISSING}:
        return ColumnReference(column, "categorical", role, rows, unscorable="all values missing in the reference")
    labels = tuple(sorted(set(shares) | {MISSING, OTHER}))
    p = np.array([shares.get(label, 0.0) for label in labels])
    return ColumnReference(column, "categorical", role, rows, labels, (), tuple(p), _shape_table(p, level))


def _kll(view: Any) -> Any:
    metric = view.get_metric("distribution")
    if metric is None:
        return None
    sketch = metric.kll.value
    return None if sketch.is_empty() else sketch


def _calibrate_numeric(column: str, role: str, view: Any, level: float) -> ColumnReference:
    rows, missing = _rows(view)
    sketch = _kll(view)
    if sketch is None:
        why = "all values missing in the reference" if rows and missing >= rows else "no numeric values"
        return ColumnReference(column, "numeric", role, rows, unscorable=f"{why} in the reference")
    quantiles = sketch.get_quantiles([i / FINE_BINS for i in range(1, FINE_BINS)])
    edges = tuple(sorted({float(q) for q in quantiles if math.isfinite(q)}))
    present = _bin_shares(sketch, edges)
    missing_share = missing / rows if rows else 0.0
    p = np.append(present * (1 - missing_share), missing_share)
    return ColumnReference(
        column,
        "numeric",
        role,
        rows,
        (),
        edges,
        tuple(p),
        {n: _shape_quantile(_merge(p, n), n, level) for n in GRID},
        _location_sd(present),
    )


def _bin_shares(sketch: Any, edges: tuple[float, ...]) -> Any:
    """Shares of a sketch's values in the bins ``(-inf, e1), [e1, e2), ..., [ek, inf)``."""
    if not edges:
        return np.array([1.0])
    # get_cdf gives P(X < edge) at each edge, then 1.0.
    cdf = np.asarray(sketch.get_cdf(list(edges)), dtype=float)
    return np.clip(np.diff(np.concatenate([[0.0], cdf])), 0.0, 1.0)


def buckets_for(rows: int) -> int:
    """How many buckets a numeric column's shape is judged on at ``rows``: few for few rows (each adds noise)."""
    return int(min(10, max(2, round(rows**0.4 / 1.5))))


def _merge(p: Any, rows: int) -> Any:
    """Merge the fine bins (all but the last, missing, entry) into k(rows) buckets of about equal reference mass."""
    present, missing = np.asarray(p[:-1]), p[-1]
    k = min(buckets_for(rows), len(present))
    if k >= len(present):
        return np.asarray(p)
    total = present.sum()
    cumulative = np.cumsum(present) / (total or 1.0)
    group = np.minimum((cumulative * k - 1e-9).astype(int), k - 1)
    merged = np.bincount(group, weights=present, minlength=k)
    return np.append(merged[merged > 0], missing) if missing > 0 else merged[merged > 0]


def _normal_scores(present: Any) -> tuple[Any, Any]:
    """(shares, normal score) of each fine bin: the inverse normal CDF of the bin's mid-rank in the reference."""
    from scipy import stats

    p = np.asarray(present, dtype=float)
    p = p / (p.sum() or 1.0)
    mid = np.clip(np.cumsum(p) - p / 2, 1e-9, 1 - 1e-9)
    return p, stats.norm.ppf(mid)


def _location_sd(present: Any) -> float:
    """Standard deviation of a value's normal score under the reference (a little under 1: the bins are coarse)."""
    p, scores = _normal_scores(present)
    mean = float((p * scores).sum())
    return float(math.sqrt(max(float((p * scores**2).sum()) - mean * mean, 0.0)))


def _shape_table(p: Any, level: float) -> dict[int, float]:
    return {n: _shape_quantile(p, n, level) for n in GRID}


def _shape_quantile(p: Any, rows: int, level: float) -> float:
    """The (1 - level) quantile of 8n*H^2 for n rows drawn from shares ``p``.

    Asymptotically chi-square with k-1 degrees of freedom; at small n the law is skewed by the buckets' discreteness,
    so its mean and variance are measured by drawing samples (seeded: the same reference gives the same floors)
    and a scaled chi-square with those moments gives the tail, which no affordable number of draws could.
    """
    from scipy import stats

    p = np.asarray(p, dtype=float)
    p = p[p > 0] / p[p > 0].sum()
    if len(p) < 2:
        return 0.0
    if rows >= GRID[-1] or rows <= 0:
        return float(stats.chi2.ppf(1 - level, len(p) - 1))
    counts = np.random.default_rng(rows).multinomial(rows, p, size=_DRAWS) / rows
    statistic = 8 * rows * (1 - np.sqrt(counts * p).sum(axis=1)).clip(min=0)
    mean, variance = float(statistic.mean()), float(statistic.var())
    if mean <= 0 or variance <= 0:
        return 0.0
    scale, dof = variance / (2 * mean), 2 * mean * mean / variance
    return float(scale * stats.chi2.ppf(1 - level, dof))


def _effective_rows(rows: int, reference_rows: int, sketched: bool) -> float:
    """Rows of one sample with the same noise as a batch compared with a finite (and sketched) reference."""
    inverse = 1 / rows + (1 / reference_rows if reference_rows else 0.0) + (1 / SKETCH_ROWS if sketched else 0.0)
    return 1 / inverse


def _table_value(table: dict[int, float], rows: int) -> tuple[int, float]:
    """The tabulated size at or below ``rows`` (the floor there is the larger, so this errs on the safe side)."""
    size = max((n for n in table if n <= rows), default=min(table))
    return size, table[size]


def hellinger(p: Any, q: Any) -> float:
    """Hellinger distance between two discrete distributions given as aligned shares (each summing to 1)."""
    affinity = float(np.sqrt(np.asarray(p, dtype=float) * np.asarray(q, dtype=float)).sum())
    return math.sqrt(max(0.0, 1.0 - affinity))


def location_hellinger(shift: float) -> float:
    """The Hellinger distance between two normal distributions ``shift`` standard deviations apart."""
    return math.sqrt(max(0.0, 1 - math.exp(-shift * shift / 8)))


# -- the batch's side -----------------------------------------------------------------------------------------


def category_shares(column_view: Any) -> dict[str, float]:
    """Shares of each category (plus missing values and the unlisted tail) from a whylogs column profile."""
    counts = column_view.get_metric("counts")
    n = float(counts.n.value) if counts else 0.0
    if n <= 0:
        return {}
    raw: dict[str, float] = {}
    frequent = column_view.get_metric("frequent_items")
    if frequent is not None:
        for item in frequent.to_summary_dict().get("frequent_strings", []):
            raw[str(item.value)] = float(item.est)
    missing = float(counts.null.value) if counts else 0.0
    # The frequent-items sketch may count NaN as the string "nan"; missing values get their own bucket.
    raw.pop("nan", None)
    listed = sum(raw.values())
    raw[MISSING] = missing
    raw[OTHER] = max(0.0, n - listed - missing)
    total = sum(raw.values()) or 1.0
    return {key: value / total for key, value in raw.items() if value > 0}


def score(
    target_view: Any,
    reference_view: Any,
    spec: ModelSpec,
    *,
    version: str,
    batch: str,
    reference: str,
    calibration: Calibration | None = None,
    labeled: bool = True,
) -> DriftReport:
    """Score every monitored column of a profile against the reference with thresholds calibrated to its size.

    ``labeled=False`` (served traffic: rows carry no label) leaves the target out rather than calling it absent.
    """
    target_columns = target_view.get_columns()
    columns = monitored_columns(spec, with_prediction=PREDICTION in reference_view.get_columns())
    if calibration is None or not calibration.fits(spec, columns):
        calibration = calibrate(reference_view, spec, columns)
    rows = profiles.view_rows(target_view)
    results = []
    for column, (_, role) in columns.items():
        if role == "target" and not labeled:
            continue
        ref = calibration.columns[column]
        effect = spec.drift.effect(column)
        view = target_columns.get(column)
        results.append(_score_column(ref, view, rows, effect, spec.drift.min_rows, calibration))
    return DriftReport(
        spec.name,
        version,
        batch,
        reference,
        rows,
        tuple(results),
        alpha=calibration.alpha,
        tests=calibration.tests,
    )


def _score_column(
    ref: ColumnReference, view: Any, batch_rows: int, effect: float, min_rows: int, calibration: Calibration
) -> ColumnDrift:
    def verdict(status: Status, note: str = "", rows: int = 0) -> ColumnDrift:
        return ColumnDrift(ref.column, ref.kind, ref.role, status, None, None, None, effect, rows, note=note)

    if ref.unscorable:
        return verdict("unscorable", ref.unscorable, batch_rows)
    if view is None:
        return verdict("unscorable", "column absent from the batch", batch_rows)
    rows, missing = _rows(view)
    if rows < min_rows:
        return verdict("insufficient_data", f"{rows} rows; drift.min_rows is {min_rows}", rows)
    if ref.kind == "categorical":
        tests = [_categorical_test(ref, view, rows, effect)]
    else:
        sketch = _kll(view)
        if sketch is None:
            why = "all values missing" if missing >= rows else "no numeric values (wrong type?)"
            return verdict("unscorable", why, rows)
        if sketch.get_n() < min_rows:
            note = f"{sketch.get_n()} non-missing values; drift.min_rows is {min_rows}"
            return verdict("insufficient_data", note, rows)
        level = calibration.alpha * LOCATION_SHARE / calibration.tests
        tests = [_shape_test(ref, sketch, rows, missing, effect), _location_test(ref, sketch, effect, level)]
    deciding = max(tests, key=lambda t: t.over)
    status: Status = "drift" if any(t.score >= t.threshold for t in tests) else "ok"
    return ColumnDrift(
        ref.column,
        ref.kind,
        ref.role,
        status,
        deciding.score,
        deciding.threshold,
        deciding.floor,
        effect,
        rows,
        statistic=deciding.statistic,
        tests=tuple(tests),
    )


def _threshold(floor: float, effect: float) -> float:
    return math.hypot(floor, effect)


def _categorical_test(ref: ColumnReference, view: Any, rows: int, effect: float) -> Test:
    shares = category_shares(view)
    known = set(ref.labels)
    q = {label: 0.0 for label in ref.labels}
    for label, share in shares.items():
        q[label if label in known else OTHER] += share
    value = hellinger(ref.shares, [q[label] for label in ref.labels])
    _, quantile = _table_value(ref.shape, rows)
    floor = math.sqrt(quantile / (8 * _effective_rows(rows, ref.rows, sketched=False)))
    return Test("shape", value, floor, _threshold(floor, effect))


def _shape_test(ref: ColumnReference, sketch: Any, rows: int, missing: int, effect: float) -> Test:
    present = _bin_shares(sketch, ref.edges)
    q = np.append(present * (1 - missing / rows), missing / rows)
    p = np.asarray(ref.shares)
    size, quantile = _table_value(ref.shape, rows)
    # Merge both sides into the buckets of the tabulated size, so the score and its floor count the same buckets.
    groups = _groups(p, size)
    value = hellinger(np.bincount(groups, weights=p), np.bincount(groups, weights=q, minlength=groups.max() + 1))
    floor = math.sqrt(quantile / (8 * _effective_rows(rows, ref.rows, sketched=True)))
    return Test("shape", value, floor, _threshold(floor, effect))


def _groups(p: Any, rows: int) -> Any:
    """Bucket index of each fine bin (and of the missing entry, last) when merged for ``rows``."""
    present = np.asarray(p[:-1])
    k = min(buckets_for(rows), len(present))
    cumulative = np.cumsum(present) / (present.sum() or 1.0)
    group = np.minimum((cumulative * k - 1e-9).astype(int), k - 1) if k < len(present) else np.arange(len(present))
    return np.append(group, group.max() + 1 if len(group) else 0)


def _location_test(ref: ColumnReference, sketch: Any, effect: float, level: float) -> Test:
    from scipy import stats

    p, scores = _normal_scores(ref.shares[:-1])
    q = _bin_shares(sketch, ref.edges)
    shift = float((q * scores).sum() / (q.sum() or 1.0)) - float((p * scores).sum())
    values = int(sketch.get_n())
    reference_values = int(ref.rows * (1 - ref.shares[-1]))
    noise = ref.location_sd / math.sqrt(_effective_rows(values, reference_values, sketched=True))
    floor = location_hellinger(float(stats.norm.ppf(1 - level / 2)) * noise)
    return Test("location", location_hellinger(shift), floor, _threshold(floor, effect))


def rejudge(column: ColumnDrift, effect: float) -> Status:
    """A stored column verdict under another effect size: for backtests."""
    if column.status in ("insufficient_data", "unscorable"):
        return column.status
    if not column.tests:  # stored before calibration: a bare score against a fixed threshold
        return "drift" if column.score is not None and column.score >= effect else "ok"
    over = any(t.score >= _threshold(t.floor, effect) for t in column.tests)
    return "drift" if over else "ok"


# -- the report -----------------------------------------------------------------------------------------------


def render_html(report: DriftReport, target_view: Any, reference_view: Any) -> str:
    """A self-contained HTML drift report (inline CSS, no scripts, no network) that renders offline."""
    rows = []
    order = {"drift": 0, "unscorable": 1, "insufficient_data": 2, "ok": 3}
    for column in sorted(report.columns, key=lambda c: (order[c.status], -((c.score or 0) / (c.threshold or 1)))):
        score_text = "n/a" if column.score is None else f"{column.score:.4f}"
        threshold = "n/a" if column.threshold is None else f"{column.threshold:.4f}"
        floor = "n/a" if column.floor is None else f"{column.floor:.4f}"
        ratio = 0.0 if column.score is None or not column.threshold else column.score / column.threshold
        width = min(100, int(ratio * 50))
        detail = html.escape(column.note) if column.note else _detail(column, target_view, reference_view)
        rows.append(
            f"<tr class='{column.status}'><td>{html.escape(column.column)}</td><td>{column.role}</td>"
            f"<td>{column.kind}</td><td>{score_text}<br><small>{column.statistic or ''}</small></td>"
            f"<td>{floor}</td><td>{column.effect:.3f}</td><td>{threshold}</td>"
            f"<td><div class='bar'><span style='width:{width}%'></span><i style='left:50%'></i></div></td>"
            f"<td>{column.status.replace('_', ' ')}</td><td>{detail}</td></tr>"
        )
    verdict = "Drift detected" if report.detected else "No drift"
    if not report.detected and report.undecided():
        verdict = "Not decided"
    counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in report.counts().items() if n)
    kinds = f" ({', '.join(report.kinds())} drift)" if report.kinds() else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.model)} drift report</title>
<style>
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}}
tr.drift td{{background:#fdecea}} tr.unscorable td,tr.insufficient_data td{{background:#fff6e0}}
.bar{{position:relative;width:160px;height:10px;background:#eee}}
.bar span{{display:block;height:10px;background:#c0392b}} tr.ok .bar span{{background:#27ae60}}
.bar i{{position:absolute;top:-3px;width:2px;height:16px;background:#333}} small{{color:#666}}
</style></head><body>
<h1>{html.escape(verdict)}{html.escape(kinds)}: {html.escape(report.model)}:{html.escape(report.version)}</h1>
<p>{html.escape(report.summary())}</p>
<p>{html.escape(counts)}</p>
<p><small>batch {html.escape(report.batch)} ({report.rows} rows) against reference {html.escape(report.reference)}.
Scores are Hellinger distances (0 = same distribution, 1 = disjoint). A column drifts when its score reaches
sqrt(noise floor&sup2; + effect&sup2;): the noise floor is what a sample of this size drawn from the reference
itself scores at most, false-alarm rate {report.alpha:g} per batch shared by its {report.tests} tests; the effect
size is the spec's drift.threshold (or drift.columns). The bar's mark is the threshold.</small></p>
<table><tr><th>column</th><th>role</th><th>kind</th><th>score</th><th>noise floor</th><th>effect</th>
<th>threshold</th><th></th><th>status</th><th>reference → batch</th></tr>
{"".join(rows)}
</table></body></html>
"""


def _detail(column: ColumnDrift, target_view: Any, reference_view: Any) -> str:
    target = target_view.get_columns().get(column.column)
    reference = reference_view.get_columns().get(column.column)
    if target is None or reference is None:
        return "column missing"
    if column.kind == "categorical":
        p, q = category_shares(target), category_shares(reference)
        keys = sorted(set(p) | set(q), key=lambda k: -abs(p.get(k, 0.0) - q.get(k, 0.0)))[:6]
        return "<br>".join(f"{html.escape(k)}: {q.get(k, 0.0):.1%} → {p.get(k, 0.0):.1%}" for k in keys)
    parts = []
    for name, key in (("p05", "q_05"), ("median", "median"), ("p95", "q_95"), ("mean", "mean")):
        ref_value = _distribution(reference, key)
        target_value = _distribution(target, key)
        if ref_value is not None and target_value is not None:
            parts.append(f"{name}: {ref_value:.4g} → {target_value:.4g}")
    return "<br>".join(parts)


def _distribution(column_view: Any, key: str) -> float | None:
    metric = column_view.get_metric("distribution")
    if metric is None:
        return None
    value = metric.to_summary_dict().get(key)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
