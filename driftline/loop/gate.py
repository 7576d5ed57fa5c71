"""The promotion gate: does the challenger replace the champion? A typed decision with its evidence.

Both models are scored on the same held-out rows, in two parts: the *fixed holdout* (held-out rows of the source)
and the *recent rows* (held-out rows of the recent window's batches, when the run has a window). The recent rows
decide when there are any and the metric is defined on them, else the fixed holdout does. The improvement is
judged with a paired bootstrap: both models are scored on the same resampled rows, and the challenger is promoted
only when the lower confidence bound of its improvement clears ``gate.min_improvement``. When the recent rows
decide, the challenger must also lose no more than ``gate.max_regression`` on the fixed holdout.

Outcomes: ``accepted``; ``not_better`` (not significantly better: information, not a page); ``regressed`` (below
``gate.min_metric``, significantly worse than the champion, or losing too much on the fixed holdout);
``incomparable`` (the champion could not be scored); ``unservable`` (the package failed its servability check);
``unchanged`` (the run would retrain the champion itself: same data, spec and code). Only regressions and
failures page on-call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from driftline.libs import lazy_module
from driftline.loop import modeling
from driftline.loop.data import fingerprint
from driftline.loop.modeling import Predictions
from driftline.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np

    from driftline.loop.evaluation import HoldoutScores
    from driftline.loop.lineage import TrainingIdentity
    from driftline.loop.modeling import Split
    from driftline.registry import Champion, Registry
else:
    np = lazy_module("numpy")


class Outcome(StrEnum):
    """What the gate decided (see the module docstring); stored as its text in the gate's evidence."""

    ACCEPTED = "accepted"
    NOT_BETTER = "not_better"
    REGRESSED = "regressed"
    INCOMPARABLE = "incomparable"
    UNSERVABLE = "unservable"
    UNCHANGED = "unchanged"


# The outcomes that mean something is wrong and someone should look: they emit driftline.model.rejected.
PAGING_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.REGRESSED, Outcome.INCOMPARABLE, Outcome.UNSERVABLE})
# Up to this many rows are resampled one by one; above it, rows are dealt at random into this many groups and the
# groups are resampled, which keeps a 1M-row bootstrap under a second with the same spread for these metrics.
BOOTSTRAP_GROUPS = 1000


@dataclass(frozen=True)
class RowsCompared:
    """Both models' predictions on one set of held-out rows (the gate's input)."""

    name: Literal["holdout", "fixed", "recent"]
    digest: str
    challenger: Predictions
    champion: Predictions | None

    @property
    def rows(self) -> int:
        return self.challenger.rows


@dataclass(frozen=True)
class RowsEvidence:
    """Both models' scores on one set of held-out rows, and the improvement (positive = the challenger is better)."""

    rows: int
    digest: str
    challenger: float | None
    champion: float | None
    improvement: float | None
    undefined: str | None = None  # why the metric has no value on these rows


@dataclass(frozen=True)
class Bootstrap:
    """The paired bootstrap of the improvement on the deciding rows."""

    improvement: float
    lower: float | None
    upper: float | None
    confidence: float
    samples: int  # resamples on which the metric was defined for both models
    rows: int


@dataclass(frozen=True)
class GateDecision:
    """Accepted or not, the outcome, why, and every number that decided it.

    ``challenger`` and ``champion`` are the scores on all held-out rows (``holdout_rows``, ``holdout_digest``;
    ``gate.min_metric`` applies there); ``improvement`` and its bounds are on the deciding rows (``decided_on``);
    ``fixed`` and ``recent`` hold both models on each part.
    """

    accepted: bool
    reason: str
    metric: str
    maximize: bool
    challenger: float | None
    champion: float | None
    champion_version: str | None
    improvement: float | None
    min_metric: float | None
    min_improvement: float
    holdout_rows: int
    holdout_digest: str
    # Extra evidence, recorded but not deciding: e.g. the servability check.
    windows: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None  # default: accepted or regressed, from ``accepted``
    decided_on: Literal["fixed", "recent", "holdout"] | None = None
    fixed: RowsEvidence | None = None
    recent: RowsEvidence | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    confidence: float | None = None
    bootstrap_samples: int | None = None
    max_regression: float | None = None
    allowed_regression: float | None = None  # max_regression in the metric's units (x the champion's fixed score)
    fixed_loss_lower_bound: float | None = None  # the challenger's loss on the fixed holdout, at least (bootstrap)

    def __post_init__(self) -> None:
        if self.outcome is None:
            object.__setattr__(self, "outcome", Outcome.ACCEPTED if self.accepted else Outcome.REGRESSED)

    @property
    def pages(self) -> bool:
        """Whether this outcome is a regression or failure that on-call hears of (``driftline.model.rejected``)."""
        return self.outcome in PAGING_OUTCOMES

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_evidence(self, name: str, value: Any) -> GateDecision:
        """The same decision with one more piece of evidence (e.g. the servability check's numbers)."""
        return replace(self, windows={**self.windows, name: value})

    def unservable(self, why: str) -> GateDecision:
        """The same decision, overturned because the packaged model failed its servability check."""
        return replace(self, accepted=False, outcome=Outcome.UNSERVABLE, reason=f"servability check failed: {why}")


def unchanged(
    spec: ModelSpec, champion_version: str, data_fingerprint: str, holdout_rows: int, holdout_digest: str
) -> GateDecision:
    """The decision of a run whose data, spec and code equal the champion's: nothing to train, nothing to promote."""
    return GateDecision(
        accepted=False,
        reason=(
            f"unchanged: data fingerprint {data_fingerprint[:12]}, spec digest and code version equal champion "
            f"{champion_version}'s lineage; nothing trained, {champion_version} stays"
        ),
        metric=spec.metric.name,
        maximize=spec.metric.maximize,
        challenger=None,
        champion=None,
        champion_version=champion_version,
        improvement=None,
        min_metric=spec.gate.min_metric,
        min_improvement=spec.gate.min_improvement,
        holdout_rows=holdout_rows,
        holdout_digest=holdout_digest,
        outcome=Outcome.UNCHANGED,
    )


def paired_bootstrap(
    challenger: Predictions,
    champion: Predictions,
    metric: str,
    maximize: bool,
    samples: int,
    confidence: float,
    seed: int,
    improvement: float | None = None,
) -> Bootstrap:
    """Resample the rows (the same resample for both models) and bound the challenger's improvement.

    Poisson(1) weights per row (or per random group of rows above ``BOOTSTRAP_GROUPS`` rows), ``samples`` times,
    seeded: the same rows and seed give the same bounds. The bounds are one-sided percentiles at ``confidence``,
    shifted by the exact improvement minus the resampling machinery's own full-sample value, so the binning of
    ROC AUC scores on large holdouts moves no bound.
    """
    rows = challenger.rows
    if improvement is None:  # callers that scored both models already pass it in (exact AUC on 1M rows costs)
        improvement = _improvement(
            modeling.metric_value(challenger, metric)[0], modeling.metric_value(champion, metric)[0], maximize
        )
    assert improvement is not None, "the bootstrap needs a metric defined for both models"
    rng = np.random.default_rng(seed)
    if rows <= BOOTSTRAP_GROUPS:
        groups, n_groups = np.arange(rows), rows
    else:
        groups, n_groups = rng.permutation(rows) % BOOTSTRAP_GROUPS, BOOTSTRAP_GROUPS
    weights = rng.poisson(1.0, size=(samples, n_groups)).astype(float)
    ones = np.ones((1, n_groups))
    sign = 1.0 if maximize else -1.0
    challenger_sums = modeling.row_statistics(challenger, metric, groups, n_groups)
    champion_sums = modeling.row_statistics(champion, metric, groups, n_groups)
    resampled = sign * (
        modeling.metric_of_sums(challenger_sums, weights) - modeling.metric_of_sums(champion_sums, weights)
    )
    full = sign * (modeling.metric_of_sums(challenger_sums, ones) - modeling.metric_of_sums(champion_sums, ones))
    defined = resampled[~np.isnan(resampled)]
    # Fewer than half the resamples defined (e.g. a handful of rows of a rare class): no bound worth trusting.
    if len(defined) < samples / 2 or np.isnan(full[0]):
        return Bootstrap(improvement, None, None, confidence, len(defined), rows)
    shift = improvement - float(full[0])
    lower = float(np.quantile(defined, 1.0 - confidence)) + shift
    upper = float(np.quantile(defined, confidence)) + shift
    return Bootstrap(improvement, lower, upper, confidence, len(defined), rows)


def _improvement(challenger: float | None, champion: float | None, maximize: bool) -> float | None:
    if challenger is None or champion is None:
        return None
    return (challenger - champion) if maximize else (champion - challenger)


def evidence(rows: RowsCompared, metric: str, maximize: bool) -> RowsEvidence:
    """Both models' scores on these rows, or why the metric is undefined there."""
    if rows.rows == 0:
        return RowsEvidence(0, rows.digest, None, None, None, "no rows")
    challenger, why = modeling.metric_value(rows.challenger, metric)
    champion, champion_why = modeling.metric_value(rows.champion, metric) if rows.champion else (None, None)
    return RowsEvidence(
        rows.rows,
        rows.digest,
        challenger,
        champion,
        _improvement(challenger, champion, maximize),
        why or champion_why,
    )


def decide(
    spec: ModelSpec,
    holdout: RowsCompared,
    fixed: RowsCompared,
    recent: RowsCompared | None,
    champion_version: str | None,
    champion_error: str | None = None,
) -> GateDecision:
    """Judge the challenger against the spec's gate and the champion on the same rows, and say why.

    ``holdout`` is every held-out row (fixed + recent), where ``gate.min_metric`` applies; ``fixed`` and
    ``recent`` are its two parts (``recent`` is None when the run has no window).
    """
    gate, metric, maximize = spec.gate, spec.metric.name, spec.metric.maximize
    better = "higher" if maximize else "lower"
    overall = evidence(holdout, metric, maximize)
    score = overall.challenger
    fixed_evidence = None
    if holdout.champion is not None:
        # Without a window the fixed holdout is every held-out row: scored once.
        same = recent is None and fixed.rows == holdout.rows
        fixed_evidence = replace(overall, digest=fixed.digest) if same else evidence(fixed, metric, maximize)
    recent_evidence = evidence(recent, metric, maximize) if recent is not None and holdout.champion else None

    def result(outcome: Outcome, reason: str, **numbers: Any) -> GateDecision:
        return GateDecision(
            accepted=outcome == Outcome.ACCEPTED,
            reason=reason,
            metric=metric,
            maximize=maximize,
            challenger=score,
            champion=overall.champion,
            champion_version=champion_version,
            improvement=numbers.pop("improvement", None),
            min_metric=gate.min_metric,
            min_improvement=gate.min_improvement,
            holdout_rows=holdout.rows,
            holdout_digest=holdout.digest,
            outcome=outcome,
            fixed=fixed_evidence,
            recent=recent_evidence,
            confidence=gate.confidence,
            max_regression=gate.max_regression,
            **numbers,
        )

    shown = "undefined" if score is None else f"{score:.4f}"
    if champion_version is None and gate.first_run == "always":
        return result(
            Outcome.ACCEPTED, f"first model: {metric} {shown}; accepted without a minimum (gate.first_run=always)"
        )
    if gate.min_metric is not None:
        meets = score is not None and (score >= gate.min_metric if maximize else score <= gate.min_metric)
        if not meets:
            limit = "minimum" if maximize else "maximum"
            why = f" ({overall.undefined})" if score is None else ""
            return result(
                Outcome.REGRESSED,
                f"{metric} {shown}{why} on the {holdout.rows} held-out rows does not reach the {limit} "
                f"{gate.min_metric:.4f} (gate.min_metric)",
            )
    if champion_version is None:
        if gate.min_metric is None:
            return result(
                Outcome.ACCEPTED,
                f"first model: {metric} {shown}; no champion to beat (gate.first_run={gate.first_run})",
            )
        return result(Outcome.ACCEPTED, f"first model: {metric} {shown} reaches gate.min_metric {gate.min_metric:.4f}")
    if holdout.champion is None:
        return result(
            Outcome.INCOMPARABLE,
            f"champion {champion_version} could not be scored on this holdout ({champion_error}); "
            "refusing to promote a model that cannot be compared",
        )

    # The recent rows decide when the metric is defined on them for both models; else the fixed holdout; else all.
    notes: list[str] = []
    deciding, deciding_evidence = holdout, overall
    for rows, seen in ((fixed, fixed_evidence), (recent, recent_evidence)):
        if rows is not None and seen is not None and seen.improvement is not None:
            deciding, deciding_evidence = rows, seen  # the later (recent) wins when defined
    if recent_evidence is not None and deciding is not recent:
        notes.append(f"{metric} is undefined on the {recent_evidence.rows} recent rows ({recent_evidence.undefined})")
    if deciding_evidence.improvement is None:
        return result(
            Outcome.INCOMPARABLE,
            f"{metric} is undefined on the {deciding.rows} held-out rows ({deciding_evidence.undefined}); "
            "refusing to promote a model that cannot be compared",
        )
    assert deciding.champion is not None
    boot = paired_bootstrap(
        deciding.challenger,
        deciding.champion,
        metric,
        maximize,
        gate.bootstrap_samples,
        gate.confidence,
        spec.split.seed,
        deciding_evidence.improvement,
    )
    where = {"recent": "recent rows", "fixed": "fixed-holdout rows", "holdout": "held-out rows"}[deciding.name]
    lower = "undefined" if boot.lower is None else f"{boot.lower:+.4f}"
    verdict = (
        f"{metric} on the {deciding.rows} {where}: {deciding_evidence.challenger:.4f} vs champion {champion_version} "
        f"{deciding_evidence.champion:.4f} (improvement {boot.improvement:+.4f}, {better} is better; "
        f"lower bound {lower} at gate.confidence {gate.confidence:g}; gate.min_improvement {gate.min_improvement:.4f})"
    )
    numbers: dict[str, Any] = {
        "improvement": boot.improvement,
        "decided_on": deciding.name,
        "lower_bound": boot.lower,
        "upper_bound": boot.upper,
        "bootstrap_samples": boot.samples,
    }
    if deciding.name == "recent" and fixed is not None and fixed_evidence is not None:
        if fixed_evidence.improvement is None or fixed_evidence.champion is None or fixed.champion is None:
            notes.append(f"the fixed holdout cannot be compared ({fixed_evidence.undefined}); no regression check")
        else:
            allowed = gate.max_regression * abs(fixed_evidence.champion)
            numbers["allowed_regression"] = allowed
            loss = -fixed_evidence.improvement
            # Judged like the improvement: refused only when the loss surely exceeds what is allowed, so a small
            # fixed holdout does not veto an adaptation on noise.
            fixed_boot = paired_bootstrap(
                fixed.challenger,
                fixed.champion,
                metric,
                maximize,
                gate.bootstrap_samples,
                gate.confidence,
                spec.split.seed,
                fixed_evidence.improvement,
            )
            least_loss = loss if fixed_boot.upper is None else -fixed_boot.upper
            numbers["fixed_loss_lower_bound"] = least_loss
            check = (
                f"on the {fixed_evidence.rows} fixed-holdout rows {fixed_evidence.challenger:.4f} vs "
                f"{fixed_evidence.champion:.4f} (loss {loss:+.4f}, at least {least_loss:+.4f} at gate.confidence "
                f"{gate.confidence:g}; gate.max_regression {gate.max_regression:g} of "
                f"{abs(fixed_evidence.champion):.4f} allows {allowed:.4f})"
            )
            if least_loss > allowed:
                return result(
                    Outcome.REGRESSED, f"{check}: the challenger forgets the fixed holdout; {verdict}", **numbers
                )
            notes.append(check)
    tail = "".join(f"; {note}" for note in notes)
    if boot.lower is not None and boot.lower > gate.min_improvement:
        return result(Outcome.ACCEPTED, verdict + tail, **numbers)
    if boot.upper is not None and boot.upper < 0:
        return result(Outcome.REGRESSED, f"significantly worse: {verdict}{tail}", **numbers)
    return result(Outcome.NOT_BETTER, f"not significantly better: {verdict}{tail}", **numbers)


def judge(spec: ModelSpec, split: Split, scores: HoldoutScores) -> GateDecision:
    """Judge the challenger against the spec's gate and the champion on the fixed holdout and the recent rows."""
    champion = scores.champion_predictions
    holdout = RowsCompared("holdout", split.holdout_digest, scores.challenger, champion)
    if split.holdout_recent is None:
        # No window: every held-out row is a fixed-holdout row.
        fixed = replace(holdout, name="fixed")
        return decide(spec, holdout, fixed, None, scores.champion.version, scores.champion.error)
    recent_rows = split.recent_mask

    def part(rows: np.ndarray) -> tuple[str, Predictions, Predictions | None]:
        subset = champion.subset(rows) if champion is not None else None
        return fingerprint(split.holdout[rows]), scores.challenger.subset(rows), subset

    fixed = RowsCompared("fixed", *part(~recent_rows))
    recent = RowsCompared("recent", *part(recent_rows))
    return decide(spec, holdout, fixed, recent, scores.champion.version, scores.champion.error)


def unchanged_since(
    registry: Registry, spec: ModelSpec, champion: Champion | None, identity: TrainingIdentity
) -> GateDecision | None:
    """The ``unchanged`` decision if this run's data, spec and code equal the champion's lineage; else None."""
    if champion is None:
        return None
    lineage = registry.version(spec.name, champion.version).lineage
    if identity.differences(lineage.identity()):
        return None
    return unchanged(
        spec,
        champion.version,
        identity.data_fingerprint,
        lineage.holdout_rows,
        lineage.holdout_digest,
    )
