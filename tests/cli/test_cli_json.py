"""``--json`` on every read command: the documented keys are stable, so scripts and on-call tooling can rely on them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.loop import profiles
from driftline.monitoring import drift
from driftline.registry import open_registry
from driftline.spec import load_spec
from tests.conftest import Project, make_lineage, mark_checked

runner = CliRunner()


def _json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _verdict(shift: float, seed: int) -> dict[str, Any]:
    """A real stored drift verdict of the fraud spec: scored, as the monitor stores it."""
    from driftline.examples.fraud import generate

    spec = load_spec("fraud")
    reference = profiles.profile_view(generate(4000, 1)[spec.columns])
    frame = generate(600, seed)[spec.columns]
    frame["amount"] = frame["amount"] * (1 + shift)
    report = drift.score(profiles.profile_view(frame), reference, spec, version="v1", batch=str(seed), reference="r")
    return report.as_dict()


@pytest.fixture
def seeded(project: Project) -> None:
    registry = open_registry()
    lineage = {"gate": {"metric": "roc_auc", "challenger": 0.91}, "rows": 500, "metrics": {"roc_auc": 0.91}}
    registry.record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1", **lineage))
    registry.record_version("fraud", "v2", "fraud:v2", make_lineage("fraud", "v2", **lineage))
    mark_checked(registry, "fraud", "v1")
    registry.promote("fraud", "v1", None, actor="tester", reason="first model", evidence={})
    mark_checked(registry, "fraud", "v2")
    registry.promote("fraud", "v2", "v1", actor="tester", reason="better", evidence={})
    for fingerprint, shift in (("a" * 64, 0.0), ("b" * 64, 3.0)):
        assert registry.claim_batch("fraud", fingerprint, f"landing/{fingerprint[:1]}.parquet")
        verdict = _verdict(shift, seed=ord(fingerprint[0]))
        registry.finish_batch(
            "fraud",
            fingerprint,
            status="accepted",
            champion_version="v2",
            drift=verdict,
            drift_detected=bool(verdict["drifted"]),
            rows=600,
            report_path="/r.html",
        )


def test_status_names_the_champion_version(seeded: None) -> None:
    status = _json("status", "fraud")
    assert status["champion"]["version"] == "v2" and status["champion"]["tag"] == "fraud:v2"
    assert [v["version"] for v in status["versions"]] == ["v2", "v1"]


def test_ledger_is_a_list_of_entries(seeded: None) -> None:
    entries = _json("ledger", "fraud")
    assert isinstance(entries, list)
    assert [(e["action"], e["from_version"], e["to_version"]) for e in entries] == [
        ("promote", None, "v1"),
        ("promote", "v1", "v2"),
    ]


def test_drift_lists_drifted_columns_and_every_column_verdict(seeded: None) -> None:
    latest = _json("drift", "fraud")
    assert latest["drifted"] == ["amount"] and latest["kinds"] == ["feature"]
    for column in latest["columns"]:
        assert {"column", "kind", "score", "threshold", "status"} <= set(column)
    amount = next(c for c in latest["columns"] if c["column"] == "amount")
    assert amount["status"] == "drift" and amount["score"] >= amount["threshold"]
    assert {c["column"] for c in latest["columns"]} >= {"amount", "country", "is_fraud"}


def test_backtest_replays_stored_scores_under_a_proposed_threshold(seeded: None, project: Project) -> None:
    spec_file = project.root / "deployments" / "fraud.toml"
    # A proposed drift.threshold leaves per-column effect sizes alone; this history is judged on the default.
    spec_file.write_text("\n".join(line for line in spec_file.read_text().splitlines() if "amount = 0.04" not in line))
    current = _json("backtest", "fraud")
    assert [b["drifted"] for b in current["batches"]] == [[], ["amount"]]
    assert current["summary"]["current"] == {"drifted_batches": 1, "retrain_requests": 1}
    relaxed = _json("backtest", "fraud", "--threshold", "0.99")
    assert relaxed["summary"]["proposed"] == {"drifted_batches": 0, "retrain_requests": 0}
    assert relaxed["summary"]["current"]["drifted_batches"] == 1
    stricter = _json("backtest", "fraud", "--min-drifted", "2", "--of-last", "2")
    assert stricter["summary"]["proposed"]["retrain_requests"] == 0


def test_models_and_lineage(seeded: None) -> None:
    assert "fraud" in _json("models")
    assert _json("lineage", "fraud:v1")["rows"] == 500


def test_drift_without_a_monitored_batch_is_empty_json(project: Project) -> None:
    assert _json("drift", "fraud") == {"model": "fraud", "batch": None, "drifted": [], "columns": []}


def test_evaluate_prints_metrics_keyed_by_name(project: Project, tmp_path: Any) -> None:
    from driftline.examples.fraud import generate
    from driftline.loop import modeling, store

    spec = load_spec("fraud", {"estimator.params.n_estimators": 20})
    frame = generate(800, 3)
    model = modeling.fit(frame, spec)
    tag = store.save("fraud", model, classifier=True, labels={}, lineage={}, schema={})
    lineage = make_lineage("fraud", tag.split(":")[1], model_files=store.digests(tag))
    open_registry().record_version("fraud", tag.split(":")[1], tag, lineage)
    path = tmp_path / "labeled.parquet"
    generate(400, 4).to_parquet(path)
    result = _json("evaluate", tag, "--data", str(path))
    assert result["rows"] == 400 and set(result["metrics"]) >= {"roc_auc", "accuracy", "f1", "log_loss"}
    unlabeled = tmp_path / "unlabeled.parquet"
    pd.DataFrame(generate(50, 5).drop(columns=["is_fraud"])).to_parquet(unlabeled)
    failed = runner.invoke(app, ["evaluate", tag, "--data", str(unlabeled)])
    assert failed.exit_code == 1 and "is_fraud" in failed.output
    assert np.isfinite(result["metrics"]["roc_auc"])


def test_evaluate_names_an_undefined_metric_and_why(project: Project, tmp_path: Any) -> None:
    from driftline.examples.fraud import generate
    from driftline.loop import modeling, store

    spec = load_spec("fraud", {"estimator.params.n_estimators": 20})
    model = modeling.fit(generate(800, 3), spec)
    tag = store.save("fraud", model, classifier=True, labels={}, lineage={}, schema={})
    lineage = make_lineage("fraud", tag.split(":")[1], model_files=store.digests(tag))
    open_registry().record_version("fraud", tag.split(":")[1], tag, lineage)
    frame = generate(600, 4)
    path = tmp_path / "one-class.parquet"
    frame[frame["is_fraud"] == 0].to_parquet(path)  # no fraud at all: ROC AUC has nothing to rank

    result = _json("evaluate", tag, "--data", str(path))

    assert "roc_auc" not in result["metrics"] and "accuracy" in result["metrics"]
    assert "one class" in result["undefined"]["roc_auc"]
    text = runner.invoke(app, ["evaluate", tag, "--data", str(path)])
    assert text.exit_code == 0, text.output
    (line,) = [line for line in text.output.splitlines() if line.strip().startswith("roc_auc")]
    assert f"undefined: {result['undefined']['roc_auc']}" in line
