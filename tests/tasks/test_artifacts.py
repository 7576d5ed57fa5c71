"""The artifacts on-call reads in the Prefect UI: the gate's outcome first, in words, then every number it used; an
undefined metric says why instead of showing a NaN."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from driftline.loop import gate
from driftline.loop.evaluation import ChampionScore
from driftline.loop.gate import GateDecision
from driftline.loop.modeling import Metrics
from tasks import artifacts
from tests.conftest import Project
from tests.tasks.test_gate import _classifier, _decide, _labels, _spec


@pytest.fixture
def published(project: Project, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the publish functions would send to Prefect, captured instead."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(artifacts, "create_markdown_artifact", lambda **kwargs: sent.append(kwargs))
    monkeypatch.setattr(artifacts, "create_table_artifact", lambda **kwargs: sent.append(kwargs))
    return sent


def _recent_decision(challenger_old: float, challenger_new: float, champion_new: float) -> GateDecision:
    old, new = _labels(400, 1), _labels(150, 2)
    return _decide(
        _spec(max_regression=0.05),
        _classifier(old, challenger_old, 3),
        _classifier(old, 0.81, 4),
        recent=(_classifier(new, challenger_new, 5), _classifier(new, champion_new, 6)),
    )


def test_the_gate_artifact_leads_with_the_outcome_then_every_number(published: list[dict[str, Any]]) -> None:
    decision = _recent_decision(0.80, 0.76, 0.50)
    assert decision.outcome == "accepted" and decision.lower_bound is not None

    artifacts.publish_gate(_spec(), decision)

    (sent,) = published
    lines = sent["markdown"].splitlines()
    assert lines[0] == "# churn: accepted: the challenger replaces champion v1"
    assert lines[2] == decision.reason
    assert sent["description"] == "churn: gate accepted" and sent["key"].endswith("-churn-gate")
    text = sent["markdown"]
    assert "| fixed holdout | 400 | `ffffffffffffffff` | 0.8 | 0.81 | -0.01 |  |" in text
    assert "| recent rows **(decides)** | 150 | `rrrrrrrrrrrrrrrr` | 0.76 | 0.5 | +0.26 |  |" in text
    assert "| all held-out rows (gate.min_metric) | 550 | `dddddddddddddddd` |" in text
    assert "| decided on | recent |" in text and "| improvement | +0.26 |" in text
    assert f"| lower bound at confidence 0.95 | {decision.lower_bound:+.6g} |" in text
    assert f"| upper bound at confidence 0.95 | {decision.upper_bound:+.6g} |" in text
    assert f"| samples | {decision.bootstrap_samples} |" in text
    assert "| gate.max_regression | 0.05 |" in text and "| gate.min_improvement | 0 |" in text
    assert f"({decision.metric} units) | {0.05 * 0.81:.6g} |" in text
    assert decision.fixed_loss_lower_bound is not None
    assert (
        f"| loss on the fixed holdout, at least (at confidence 0.95) | {decision.fixed_loss_lower_bound:+.6g} |" in text
    )
    assert "np.float" not in text and "nan" not in text.lower()


@pytest.mark.parametrize(
    ("challenger_old", "challenger_new", "champion_new", "headline"),
    [
        (0.95, 0.55, 0.75, "regressed: the challenger is significantly worse on the recent rows; champion v1 stays"),
        (
            0.70,
            0.76,
            0.50,
            "regressed: the challenger loses more than gate.max_regression on the fixed holdout; champion v1 stays",
        ),
        (
            0.80,
            0.60,
            0.60,
            "not better: the challenger is not significantly better on the recent rows; champion v1 stays",
        ),
    ],
)
def test_the_headline_says_which_way_the_gate_went(
    published: list[dict[str, Any]], challenger_old: float, challenger_new: float, champion_new: float, headline: str
) -> None:
    artifacts.publish_gate(_spec(), _recent_decision(challenger_old, challenger_new, champion_new))

    assert published[0]["markdown"].splitlines()[0] == f"# churn: {headline}"


def test_an_undefined_metric_shows_why_in_its_row(published: list[dict[str, Any]]) -> None:
    old, new = _labels(400, 1), np.zeros(20, dtype=np.int64)
    decision = _decide(
        _spec("roc_auc"),
        _classifier(old, 0.95, 3),
        _classifier(old, 0.80, 4),
        recent=(_classifier(new, 0.9, 5), _classifier(new, 0.9, 6)),
    )

    artifacts.publish_gate(_spec(), decision)

    text = published[0]["markdown"]
    assert "| recent rows | 20 | `rrrrrrrrrrrrrrrr` | — | — | — | the 20 rows hold one class only (0) |" in text
    assert "| fixed holdout **(decides)** | 400 |" in text


def test_an_unchanged_run_without_scores_still_publishes(published: list[dict[str, Any]]) -> None:
    decision = gate.unchanged(_spec(), "v3", "a" * 64, 500, "d" * 64)

    artifacts.publish_gate(_spec(), decision)

    text = published[0]["markdown"]
    assert text.startswith("# churn: unchanged: same data, spec and code as champion v3; nothing trained")
    assert "| all held-out rows (gate.min_metric) | 500 | `dddddddddddddddd` | — | — | — |  |" in text
    assert "| decided on | — |" in text and "| samples | — |" in text
    assert published[0]["description"] == "churn: gate unchanged"


def test_an_unservable_package_and_numpy_numbers_read_plainly(published: list[dict[str, Any]]) -> None:
    decision = _recent_decision(0.80, 0.76, 0.50)
    numpy_numbers = replace(decision, challenger=np.float64(0.7), improvement=np.float64(0.26))
    overturned = numpy_numbers.with_evidence("servability", {"p95_ms": np.float64(12.5)}).unservable("p95 too slow")

    artifacts.publish_gate(_spec(), overturned)

    text = published[0]["markdown"]
    assert text.splitlines()[0] == (
        "# churn: unservable: the packaged challenger failed its servability check; champion v1 stays"
    )
    assert "| improvement | +0.26 |" in text and '{"p95_ms": 12.5}' in text
    assert "np.float64" not in text


def test_the_metrics_table_shows_an_undefined_metric_with_its_reason(published: list[dict[str, Any]]) -> None:
    challenger = Metrics(
        values={"accuracy": np.float64(0.9)},  # type: ignore[dict-item]
        primary="roc_auc",
        rows=20,
        undefined={"roc_auc": "the 20 rows hold one class only (0)"},
    )
    champion = Metrics(values={"accuracy": 0.8, "roc_auc": 0.7}, primary="roc_auc", rows=20)

    artifacts.publish_metrics(_spec(), challenger, ChampionScore("v1", champion))

    accuracy, roc_auc = published[0]["table"]
    assert accuracy == {
        "metric": "accuracy",
        "challenger": 0.9,
        "champion v1": 0.8,
        "gate metric": False,
        "undefined": "",
    }
    assert type(accuracy["challenger"]) is float
    assert roc_auc == {
        "metric": "roc_auc",
        "challenger": None,
        "champion v1": 0.7,
        "gate metric": True,
        "undefined": "challenger: the 20 rows hold one class only (0)",
    }
