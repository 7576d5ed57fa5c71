"""Model specs: the shipped ones load, and a bad spec fails naming the file, the key and the rule."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from driftline.errors import SpecError
from driftline.spec import apply_overrides, load_spec, parse_override, parse_spec
from tests.conftest import REPO, Project


def _fraud() -> dict[str, Any]:
    return tomllib.loads((REPO / "deployments" / "fraud.toml").read_text())


def _write(project: Project, name: str, data: dict[str, Any]) -> Path:
    lines = []

    def emit(prefix: str, table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {_toml(value)}")
        for key, value in table.items():
            if isinstance(value, dict):
                emit(f"{prefix}.{key}" if prefix else key, value)

    emit("", data)
    path = project.root / "deployments" / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


@pytest.mark.parametrize("name", ["fraud", "breast_cancer"])
def test_shipped_specs_load(project: Project, name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    assert spec.suite_path.is_file()


@pytest.mark.parametrize(
    ("change", "key", "rule"),
    [
        (lambda d: d["estimator"].__setitem__("kind", "xgb"), "estimator.kind", "Input should be"),
        (lambda d: d["estimator"].__setitem__("paramz", {}), "estimator.paramz", "unknown key"),
        (lambda d: d.__setitem__("targte", "is_fraud"), "targte", "unknown key"),
        (lambda d: d.pop("target"), "target", "required key is missing"),
        (lambda d: d["split"].__setitem__("holdout_fraction", 1.5), "split.holdout_fraction", "less than 1"),
        (
            lambda d: d.__setitem__("metric", {"name": "rmse"}),
            "metric.name 'rmse' is not for classification",
            "roc_auc",
        ),
        (lambda d: d["metric"].__setitem__("direction", "minimize"), "metric", "roc_auc is to maximize"),
        (lambda d: d["gate"].__setitem__("min_improvement", -1), "gate.min_improvement", "greater than or equal"),
        (lambda d: d["features"].__setitem__("numeric", ["amount", "is_fraud"]), "target 'is_fraud'", "feature"),
        (lambda d: d["source"].__setitem__("sklearn", "iris"), "source", "exactly one of 'path', 'sql' or 'sklearn'"),
        (lambda d: d.__setitem__("name", "Fraud Model"), "name", "lowercase"),
        (lambda d: d["drift"]["columns"].__setitem__("ammount", 0.1), "drift.columns", "ammount"),
        (lambda d: d.__setitem__("monitor", {"settle_seconds": -1}), "monitor.settle_seconds", "greater than"),
        (lambda d: d.__setitem__("monitor", {"ready_marker": "../_SUCCESS"}), "monitor.ready_marker", "plain file"),
        (lambda d: d["source"].__setitem__("on_unreadable", "ignore"), "source.on_unreadable", "'fail' or 'skip'"),
    ],
)
def test_bad_spec_names_file_key_and_rule(project: Project, change: Any, key: str, rule: str) -> None:
    data = _fraud()
    change(data)
    path = _write(project, "broken", data)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert str(path) in message
    assert key in message
    assert rule in message


def test_spec_name_must_match_its_file(project: Project) -> None:
    _write(project, "other", _fraud())
    with pytest.raises(SpecError, match="must match the file name 'other'"):
        load_spec("other")


def test_unknown_model_lists_the_known_ones(project: Project) -> None:
    with pytest.raises(SpecError, match=r"no such model spec .*breast_cancer, fraud"):
        load_spec("frauds")


def test_invalid_toml_names_the_file(project: Project) -> None:
    path = project.root / "deployments" / "bad.toml"
    path.write_text("name = 'bad'\n[source\n")
    with pytest.raises(SpecError, match=r"bad\.toml: not valid TOML"):
        load_spec("bad")


def test_overrides_are_validated_like_the_file(project: Project) -> None:
    spec = load_spec("fraud", {"estimator.params.max_depth": 2, "gate.min_metric": 0.6})
    assert spec.estimator.params["max_depth"] == 2 and spec.estimator.params["n_estimators"] == 200
    assert spec.gate.min_metric == 0.6
    with pytest.raises(SpecError, match=r"gate\.min_improvement"):
        load_spec("fraud", {"gate.min_improvement": -0.5})


def test_parse_override_reads_toml_values() -> None:
    assert parse_override("estimator.params.max_depth=3") == ("estimator.params.max_depth", 3)
    assert parse_override("estimator.kind=random_forest") == ("estimator.kind", "random_forest")
    assert parse_override("features.numeric=['a', 'b']") == ("features.numeric", ["a", "b"])
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_override("estimator.kind")
    with pytest.raises(SpecError, match="'kind' is a value"):
        apply_overrides({"estimator": {"kind": "xgboost"}}, {"estimator.kind.x": 1}, "spec")


def test_sql_source_needs_table_or_query() -> None:
    data = _fraud() | {"source": {"sql": {"url": "sqlite:///x.db"}}}
    with pytest.raises(SpecError, match=r"source\.sql: give exactly one of 'table' or 'query'"):
        parse_spec(data)


def test_unknown_estimator_parameter_names_the_key(project: Project) -> None:
    from driftline.loop.modeling import pipeline

    spec = load_spec("fraud", {"estimator.params.max_dept": 3})
    with pytest.raises(
        SpecError, match=r"fraud\.toml: estimator\.params\.max_dept: XGBClassifier has no such parameter"
    ):
        pipeline(spec)
