"""The promotion gate: does the challenger replace the champion? A typed decision with its evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from driftline.modeling import Metrics
from driftline.spec import ModelSpec


@dataclass(frozen=True)
class GateDecision:
    """Accepted or rejected, why, and the numbers that decided it."""

    accepted: bool
    reason: str
    metric: str
    maximize: bool
    challenger: float
    champion: float | None
    champion_version: str | None
    improvement: float | None
    min_metric: float | None
    min_improvement: float
    holdout_rows: int
    holdout_digest: str
    # Extra evidence, recorded but not deciding: e.g. both models on the recent (drifted) window's holdout rows.
    windows: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    spec: ModelSpec,
    challenger: Metrics,
    champion: Metrics | None,
    champion_version: str | None,
    holdout_digest: str,
    champion_error: str | None = None,
) -> GateDecision:
    """Judge the challenger on the holdout against the spec's minimum and the champion on the same rows."""
    gate, metric, maximize = spec.gate, spec.metric.name, spec.metric.maximize
    score = challenger.score
    better = "higher" if maximize else "lower"

    def result(accepted: bool, reason: str, improvement: float | None = None) -> GateDecision:
        return GateDecision(
            accepted=accepted,
            reason=reason,
            metric=metric,
            maximize=maximize,
            challenger=score,
            champion=champion.score if champion else None,
            champion_version=champion_version,
            improvement=improvement,
            min_metric=gate.min_metric,
            min_improvement=gate.min_improvement,
            holdout_rows=challenger.rows,
            holdout_digest=holdout_digest,
        )

    if champion_version is None and gate.first_run == "always":
        return result(True, f"first model: {metric} {score:.4f}; accepted without a minimum (gate.first_run=always)")
    if gate.min_metric is not None:
        meets = score >= gate.min_metric if maximize else score <= gate.min_metric
        if not meets:
            limit = "minimum" if maximize else "maximum"
            return result(
                False, f"{metric} {score:.4f} does not reach the {limit} {gate.min_metric:.4f} (gate.min_metric)"
            )
    if champion_version is None:
        if gate.first_run == "always" or gate.min_metric is None:
            return result(
                True, f"first model: {metric} {score:.4f}; no champion to beat (gate.first_run={gate.first_run})"
            )
        return result(True, f"first model: {metric} {score:.4f} reaches gate.min_metric {gate.min_metric:.4f}")
    if champion is None:
        return result(
            False,
            f"champion {champion_version} could not be scored on this holdout ({champion_error}); "
            "refusing to promote a model that cannot be compared",
        )
    improvement = (score - champion.score) if maximize else (champion.score - score)
    verdict = (
        f"{metric} {score:.4f} vs champion {champion_version} {champion.score:.4f} "
        f"(improvement {improvement:+.4f}, {better} is better; gate.min_improvement {gate.min_improvement:.4f})"
    )
    if improvement >= gate.min_improvement:
        return result(True, verdict, improvement)
    return result(False, verdict, improvement)
