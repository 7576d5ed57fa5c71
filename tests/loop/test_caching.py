"""Cache keys: the same batch, suite, spec and code give the same key; a change to any of them is a miss."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.loop import caching
from driftline.loop.modeling import split_holdout
from driftline.settings import get_settings
from driftline.spec import load_spec
from tests.conftest import Project, make_batch


@pytest.fixture
def frame() -> pd.DataFrame:
    return generate(400, seed=3)


def test_the_same_inputs_give_the_same_validation_key(project: Project, frame: pd.DataFrame) -> None:
    spec = load_spec("fraud")

    assert caching.validation_key(spec, make_batch(frame)) == caching.validation_key(spec, make_batch(frame.copy()))


def test_a_changed_batch_suite_spec_or_code_changes_the_validation_key(
    project: Project, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec("fraud")
    batch = make_batch(frame)
    before = caching.validation_key(spec, batch)

    changed_cell = frame.copy()
    changed_cell.loc[0, "amount"] += 0.01
    assert caching.validation_key(spec, make_batch(changed_cell)) != before
    assert caching.validation_key(spec, make_batch(frame, origin="elsewhere.parquet")) != before
    assert caching.validation_key(load_spec("fraud", {"estimator.params.max_depth": 2}), batch) != before

    suite = spec.suite_path
    original = suite.read_text()
    content = json.loads(original)
    content["expectations"] = content["expectations"][:-1]
    suite.write_text(json.dumps(content))
    assert caching.validation_key(spec, batch) != before

    suite.write_text(original)
    assert caching.validation_key(spec, batch) == before
    monkeypatch.setattr(caching, "source_digest", lambda: "edited driftline source")
    assert caching.validation_key(spec, batch) != before


def test_a_missing_suite_is_never_cached(project: Project, frame: pd.DataFrame) -> None:
    spec = load_spec("fraud")
    spec.suite_path.unlink()

    assert caching.validation_key(spec, make_batch(frame)) is None


def test_a_wiped_profile_store_changes_the_profile_key(project: Project, frame: pd.DataFrame) -> None:
    spec, batch, store = load_spec("fraud"), make_batch(frame), get_settings().profiles
    before = caching.profile_key(spec, batch, "reference", store, has_extra=False)

    assert caching.profile_key(spec, batch, "reference", store, has_extra=False) == before
    assert caching.profile_key(spec, batch, "batch", store, has_extra=False) != before
    assert caching.profile_key(spec, batch, "reference", store, has_extra=True) is None
    shutil.rmtree(store)
    assert caching.profile_key(spec, batch, "reference", store, has_extra=False) != before


def test_the_fit_key_names_the_training_rows_and_the_threads(project: Project, frame: pd.DataFrame) -> None:
    spec = load_spec("fraud")
    batch = make_batch(frame)
    split = replace(split_holdout(frame, spec), fingerprint=batch.fingerprint)
    before = caching.fit_key(spec, split, 2)

    assert caching.fit_key(spec, split, 2) == before
    assert caching.fit_key(spec, split, 1) != before
    assert caching.fit_key(load_spec("fraud", {"split.seed": 8}), split, 2) != before
    assert caching.fit_key(load_spec("fraud", {"estimator.seed": 1}), split, 2) != before
    assert caching.fit_key(spec, replace(split, fingerprint="another batch"), 2) != before
    assert caching.fit_key(spec, replace(split, fingerprint=""), 2) is None  # rows of unknown origin: not cached
