"""Splitting and fitting: a fixed holdout that rows never leave, and estimator settings checked by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.errors import SpecError, TrainingError
from driftline.examples.fraud import generate
from driftline.spec import load_spec
from tasks.training import fit_model, split_holdout
from tests.conftest import Project, make_batch


def _ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["transaction_id"])


def test_split_is_deterministic(project: Project, fraud_frame: pd.DataFrame) -> None:
    spec = load_spec("fraud")

    first = split_holdout.fn(spec, batch=make_batch(fraud_frame))
    again = split_holdout.fn(spec, batch=make_batch(fraud_frame.copy()))

    pd.testing.assert_frame_equal(first.holdout, again.holdout)
    pd.testing.assert_frame_equal(first.train, again.train)
    assert first.holdout_digest == again.holdout_digest
    assert _ids(first.train).isdisjoint(_ids(first.holdout))
    assert len(first.train) + len(first.holdout) == len(fraud_frame)


def test_a_row_stays_on_its_side_when_the_data_grows(project: Project) -> None:
    spec = load_spec("fraud")
    first = generate(1500, seed=21)
    grown = pd.concat([generate(1000, seed=20), first, generate(1000, seed=22)], ignore_index=True)

    before = split_holdout.fn(spec, batch=make_batch(first))
    after = split_holdout.fn(spec, batch=make_batch(grown))

    assert _ids(before.holdout) <= _ids(after.holdout)
    assert _ids(before.train) <= _ids(after.train)


def test_split_respects_the_holdout_fraction(project: Project) -> None:
    frame = generate(4000, seed=23)
    for fraction in (0.2, 0.5):
        spec = load_spec("fraud", {"split.holdout_fraction": fraction})
        split = split_holdout.fn(spec, batch=make_batch(frame))
        assert abs(len(split.holdout) / len(frame) - fraction) < 0.03
        assert split.fraction == fraction


def test_a_different_seed_gives_a_different_split(project: Project, fraud_frame: pd.DataFrame) -> None:
    seven = split_holdout.fn(load_spec("fraud"), batch=make_batch(fraud_frame))
    eight = split_holdout.fn(load_spec("fraud", {"split.seed": 8}), batch=make_batch(fraud_frame))

    assert _ids(seven.holdout) != _ids(eight.holdout)
    assert seven.holdout_digest != eight.holdout_digest
    assert eight.seed == 8


def test_a_different_seed_gives_a_different_split_of_numeric_data(project: Project) -> None:
    from tasks.data import load_batches

    spec = load_spec("breast_cancer")
    (batch,) = load_batches.fn(spec)

    three = split_holdout.fn(spec, batch=batch)
    other = split_holdout.fn(load_spec("breast_cancer", {"split.seed": 4}), batch=batch)

    assert three.holdout_digest != other.holdout_digest


def test_a_target_with_missing_values_raises_naming_the_column(project: Project, fraud_frame: pd.DataFrame) -> None:
    frame = fraud_frame.astype({"is_fraud": "float64"})
    frame.loc[[5, 50, 500], "is_fraud"] = np.nan

    with pytest.raises(TrainingError, match="'is_fraud' has 3 missing values") as raised:
        split_holdout.fn(load_spec("fraud"), batch=make_batch(frame, "gappy.parquet"))
    assert "gappy.parquet" in str(raised.value)


def test_fit_model_records_the_training_schema(project: Project, fraud_frame: pd.DataFrame) -> None:
    spec = load_spec("fraud", {"estimator.params.n_estimators": 20})
    split = split_holdout.fn(spec, batch=make_batch(fraud_frame))

    fitted = fit_model.fn(spec, split=split)

    assert fitted.train_rows == len(split.train)
    assert fitted.estimator == "xgboost"
    assert fitted.schema.target == "is_fraud"
    assert fitted.schema.classes == (0, 1)
    columns = {column.name: column for column in fitted.schema.columns}
    assert list(columns) == spec.features.columns
    assert columns["amount"].kind == "numeric"
    assert columns["country"].kind == "categorical"
    assert columns["country"].categories == tuple(sorted(set(split.train["country"])))
    predicted = fitted.model.predict(split.holdout[spec.features.columns])
    assert set(predicted) <= {0, 1}
    assert len(predicted) == len(split.holdout)


@pytest.mark.parametrize(
    ("kind", "param"),
    [("xgboost", "max_depht"), ("logistic_regression", "max_iterations"), ("random_forest", "n_trees")],
)
def test_an_unknown_estimator_param_raises_naming_it(
    project: Project, fraud_frame: pd.DataFrame, kind: str, param: str
) -> None:
    spec = load_spec("fraud", {"estimator.kind": kind, "estimator.params": {param: 3}})
    split = split_holdout.fn(spec, batch=make_batch(fraud_frame))

    with pytest.raises(SpecError, match=rf"estimator\.params\.{param}: \w+ has no such parameter") as raised:
        fit_model.fn(spec, split=split)
    assert str(spec.spec_path) in str(raised.value)


def test_the_split_marks_the_held_out_rows_of_the_recent_window(project: Project) -> None:
    spec = load_spec("fraud")
    source, window = generate(2000, seed=31), generate(600, seed=32)
    frame = pd.concat([source, window], ignore_index=True)

    split = split_holdout.fn(spec, batch=make_batch(frame), recent_rows=len(window))

    recent = split.holdout[split.recent_mask]
    assert _ids(recent) == _ids(split.holdout) & _ids(window)
    assert _ids(split.holdout[~split.recent_mask]) == _ids(split.holdout) & _ids(source)
    # The same rows split alone land on the same side: the recent rows are the window's own holdout.
    assert _ids(recent) == _ids(split_holdout.fn(spec, batch=make_batch(window)).holdout)


def test_a_split_without_a_window_marks_no_recent_rows(project: Project, fraud_frame: pd.DataFrame) -> None:
    split = split_holdout.fn(load_spec("fraud"), batch=make_batch(fraud_frame))

    assert split.holdout_recent is None and not split.recent_mask.any()


def _booster_bytes(model: object) -> bytes:
    wrapper = model.named_steps["model"]  # type: ignore[attr-defined]
    return bytes(wrapper.estimator_.get_booster().save_raw("ubj"))


_FIT_IN_A_CHILD = """
import sys
from driftline.examples.fraud import generate
from driftline.loop.data import Batch, fingerprint
from driftline.spec import load_spec
from tasks.training import fit_model, split_holdout

frame = generate(3000, seed=11)
spec = load_spec("fraud")
split = split_holdout.fn(spec, batch=Batch(origin="generated", frame=frame, fingerprint=fingerprint(frame)))
model = fit_model.fn(spec, split=split).model
sys.stdout.buffer.write(bytes(model.named_steps["model"].estimator_.get_booster().save_raw("ubj")))
"""


def test_the_same_seed_fits_the_same_booster_on_every_core_in_any_process(
    project: Project, fraud_frame: pd.DataFrame
) -> None:
    import subprocess
    import sys

    from driftline.loop.modeling import fit_threads

    spec = load_spec("fraud")
    split = split_holdout.fn(spec, batch=make_batch(fraud_frame))

    first = fit_model.fn(spec, split=split).model
    again = fit_model.fn(spec, split=split).model
    child = subprocess.run([sys.executable, "-c", _FIT_IN_A_CHILD], capture_output=True, check=True, timeout=300)

    assert spec.estimator.params.get("n_jobs") is None  # the fit chose the thread count, not the spec
    assert first.named_steps["model"].estimator.get_params()["n_jobs"] == 1  # served on one thread
    assert fit_threads() >= 1
    assert _booster_bytes(first) == _booster_bytes(again) == child.stdout
    X = split.holdout[spec.features.columns]
    np.testing.assert_array_equal(first.predict_proba(X), again.predict_proba(X))


def test_a_different_seed_fits_a_different_booster(project: Project, fraud_frame: pd.DataFrame) -> None:
    split = split_holdout.fn(load_spec("fraud"), batch=make_batch(fraud_frame))

    seed_42 = fit_model.fn(load_spec("fraud"), split=split).model
    seed_43 = fit_model.fn(load_spec("fraud", {"estimator.seed": 43}), split=split).model

    assert _booster_bytes(seed_42) != _booster_bytes(seed_43)
