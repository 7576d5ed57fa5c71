"""`bentoml build` of a model version: the service, the model, its serving configuration and pinned requirements."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline import libs
from driftline.examples.fraud import generate
from driftline.loop import store
from driftline.loop.modeling import fit, training_schema
from driftline.serving.bento import build
from driftline.serving.config import config_for
from driftline.spec import load_spec
from tests.conftest import REPO, Project

pytestmark = pytest.mark.integration


def test_a_bento_carries_the_service_the_model_and_pinned_requirements(project: Project) -> None:
    spec = load_spec("fraud", {"estimator.params": {"n_estimators": 5}})
    frame = generate(500, 3)
    model = fit(frame, spec)
    tag = store.save(
        "fraud", model, classifier=True, labels={}, lineage={}, schema=training_schema(frame, spec).as_dict()
    )
    config = config_for(spec, tag, files=store.digests(tag))  # what `driftline build` passes, from the registry
    bento_tag = build(config, REPO)

    bentoml = libs.bentoml()
    bento = bentoml.bentos.get(bento_tag)
    assert [str(m.tag) for m in bento.info.all_models] == [tag]
    assert {env.name: env.value for env in bento.info.envs} == {"DRIFTLINE_SERVE_CONFIG": config.model_dump_json()}
    assert config.files and "saved_model.pkl" in config.files  # the Bento's service verifies where it runs
    assert config.profile_store and config.window_seconds == 3600  # traffic profiling on, the spec's default window
    source = Path(bento.path) / "src" / "driftline"
    assert (source / "serving" / "service.py").is_file() and (source / "serving" / "requests.py").is_file()
    assert (source / "service.py").is_file()  # the shim older Bentos name: driftline.service:ModelService
    requirements = (Path(bento.path) / "env" / "python" / "requirements.txt").read_text()
    assert "prefect==3.8.8" in requirements and "bentoml==" in requirements
    assert "pytest" not in requirements  # the dev group stays out
