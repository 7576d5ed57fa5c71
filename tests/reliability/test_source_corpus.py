"""Bad files in a training source glob: each is named with its rule; skipped or failed per source.on_unreadable;
never moved or changed (a source is the user's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.errors import UnreadableFile
from driftline.examples.fraud import generate
from driftline.loop import data
from driftline.spec import load_spec
from tests.conftest import Project
from tests.reliability.corpus import SOURCES, write_sources


def _write(project: Project) -> tuple[Path, dict[str, bytes]]:
    folder = project.fraud_data
    write_sources(folder)
    for seed in (1, 2):
        project.write_fraud_batch(f"good-{seed}.parquet", generate(500, seed))
    return folder, {path.name: path.read_bytes() for path in folder.iterdir()}


def test_every_bad_source_file_fails_the_load_by_name_and_stays_untouched(project: Project) -> None:
    assert len(SOURCES) >= 10
    folder, before = _write(project)
    spec = load_spec("fraud", {"source.path": "data/fraud/*"})

    with pytest.raises(UnreadableFile) as failed:
        data.load_source(spec)

    message = str(failed.value)
    assert f"{len(SOURCES)} of the source's files cannot be read" in message and 'on_unreadable = "fail"' in message
    for case in SOURCES:
        reason = case.expect.removeprefix("skipped:")
        (line,) = [line for line in message.splitlines() if f"/{case.name}:" in line]
        assert line.endswith(f"[{reason}]"), (case.name, line)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # nothing moved or changed


def test_skip_trains_on_the_rest_and_names_each_skipped_file(project: Project) -> None:
    folder, before = _write(project)
    spec = load_spec("fraud", {"source.path": "data/fraud/*", "source.on_unreadable": "skip"})
    reported: list[str] = []

    batches = data.load_source(spec, report=reported.append)

    assert sorted(Path(batch.origin).name for batch in batches) == ["good-1.parquet", "good-2.parquet"]
    assert len(reported) == len(SOURCES)
    for case in SOURCES:
        (line,) = [line for line in reported if f"/{case.name}:" in line]
        assert "skipped" in line and line.endswith(f"[{case.expect.removeprefix('skipped:')}]"), line
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_skip_with_nothing_readable_still_fails(project: Project) -> None:
    write_sources(project.fraud_data)
    spec = load_spec("fraud", {"source.path": "data/fraud/*.parquet", "source.on_unreadable": "skip"})
    with pytest.raises(UnreadableFile, match="no file of it can be read"):
        data.load_source(spec)


@pytest.mark.integration
def test_train_skips_an_unreadable_and_an_invalid_source_file_and_promotes_on_the_rest(
    project: Project, prefect_server: str
) -> None:
    from flows.train import train

    for seed in (1, 2):
        project.write_fraud_batch(f"batch-{seed}.parquet", generate(3000, seed))
    (project.fraud_data / "zero.parquet").write_bytes(b"")
    project.write_fraud_batch("late.parquet", generate(500, 3).assign(hour=30))
    before = {path.name: path.read_bytes() for path in project.fraud_data.iterdir()}
    overrides = {"estimator.params.n_estimators": 50}

    failed = train(model="fraud", overrides=overrides, return_state=True)
    assert failed.is_failed() and "zero.parquet" in str(failed.message) and "[empty]" in str(failed.message)

    outcome = train(model="fraud", overrides={**overrides, "source.on_unreadable": "skip"})
    assert outcome.promoted
    from driftline.registry import open_registry

    lineage = open_registry().version("fraud", str(outcome.version)).lineage
    assert sorted(Path(source).name for source in lineage.data_sources) == ["batch-1.parquet", "batch-2.parquet"]
    assert {path.name: path.read_bytes() for path in project.fraud_data.iterdir()} == before  # never moved
    (kept,) = (project.state / "quarantine" / "fraud").glob("*/late.parquet")  # the invalid one: a copy, as evidence
    assert kept.read_bytes() == before["late.parquet"]
