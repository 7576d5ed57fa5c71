"""Packaging: the model lands in the BentoML store with its labels, lineage and schema, and loads back unchanged."""

from __future__ import annotations

import json

import numpy as np

from driftline import libs
from driftline.loop import store
from tasks.packaging import package_model
from tests.conftest import Project, Trained


def test_package_model_saves_labels_lineage_and_schema(project: Project, trained_fraud: Trained) -> None:
    lineage = trained_fraud.lineage()

    packaged = package_model.fn(trained_fraud.spec, fitted=trained_fraud.fitted, lineage=lineage)

    tag = packaged.tag
    assert (packaged.lineage.tag, packaged.lineage.version) == (tag, packaged.version)
    assert tag == f"fraud:{packaged.version}"
    bentoml = libs.bentoml()
    saved = bentoml.models.get(tag)
    assert str(saved.tag) == tag
    assert tag.startswith("fraud:")
    labels = saved.info.labels
    assert labels["driftline.model"] == "fraud"
    assert labels["task"] == "classification"
    assert labels["estimator"] == "xgboost"
    assert labels["data-fingerprint"] == trained_fraud.batch.fingerprint[:16]
    stored = json.loads(saved.info.metadata["lineage"])
    assert stored["data_fingerprint"] == trained_fraud.batch.fingerprint
    assert stored["holdout_digest"] == trained_fraud.split.holdout_digest
    assert stored["metrics"] == trained_fraud.metrics.values
    assert saved.custom_objects["schema"] == trained_fraud.fitted.schema.as_dict()
    # Every file of the stored model, digested as written (the lineage in model.yaml cannot hold its own digest).
    assert packaged.lineage.model_files == store.digests(tag)
    assert {"model.yaml", "saved_model.pkl", "custom_objects.pkl"} <= set(packaged.lineage.model_files)
    assert stored["model_files"] is None


def test_a_packaged_model_predicts_like_the_fitted_one(project: Project, trained_fraud: Trained) -> None:
    packaged = package_model.fn(trained_fraud.spec, fitted=trained_fraud.fitted, lineage=trained_fraud.lineage())

    loaded = store.load(packaged.tag, packaged.lineage.model_files)

    X_holdout = trained_fraud.split.holdout[trained_fraud.spec.features.columns]
    fitted = trained_fraud.fitted.model
    np.testing.assert_array_equal(loaded.predict(X_holdout), fitted.predict(X_holdout))
    np.testing.assert_array_equal(loaded.predict_proba(X_holdout), fitted.predict_proba(X_holdout))


def test_each_package_is_a_new_version(project: Project, trained_fraud: Trained) -> None:
    first = package_model.fn(
        trained_fraud.spec, fitted=trained_fraud.fitted, lineage=trained_fraud.lineage("first")
    ).tag
    second = package_model.fn(
        trained_fraud.spec, fitted=trained_fraud.fitted, lineage=trained_fraud.lineage("second")
    ).tag

    assert first != second
    reasons = {json.loads(libs.bentoml().models.get(tag).info.metadata["lineage"])["reason"] for tag in (first, second)}
    assert reasons == {"first", "second"}
