"""The registry: promotion is compare-and-set, racing runs never both win, and the ledger only grows on success."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftline.errors import PromotionConflict, StoreError
from driftline.loop.gate import GateDecision
from driftline.loop.statuses import Decision
from driftline.monitoring import drift, policy
from driftline.monitoring.drift import ColumnDrift, DriftReport
from driftline.registry import BatchStatus, Champion, LedgerEntry, Registry, open_registry
from driftline.spec import load_spec
from tasks.registry import promote_version, read_champion, record_gate_decision, register_version
from tests.conftest import REPO, Project, Trained, make_lineage, mark_checked

MODEL = "fraud"


def _promote(registry: Registry, version: str, expected: str | None) -> LedgerEntry:
    mark_checked(registry, MODEL, version)
    return registry.promote(MODEL, version, expected, actor="test", reason=f"to {version}", evidence={"v": version})


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'r.db'}"


@pytest.fixture
def registry(sqlite_url: str) -> Iterator[Registry]:
    registry = Registry(sqlite_url)
    yield registry
    registry.close()


def test_promotion_from_the_expected_champion_is_recorded_in_order(registry: Registry) -> None:
    assert registry.champion(MODEL) is None

    first = _promote(registry, "v1", None)
    second = _promote(registry, "v2", "v1")

    champion = registry.champion(MODEL)
    assert champion is not None and champion.version == "v2"
    ledger = registry.ledger(MODEL)
    assert [(entry.from_version, entry.to_version) for entry in ledger] == [(None, "v1"), ("v1", "v2")]
    assert [entry.id for entry in ledger] == [first.id, second.id]
    assert first.id < second.id
    assert ledger[1].evidence == {"v": "v2"}
    assert registry.ledger("other-model") == []


@pytest.mark.parametrize("stale", ["v1", None, "v9"])
def test_promotion_from_a_stale_champion_changes_nothing(registry: Registry, stale: str | None) -> None:
    _promote(registry, "v1", None)
    _promote(registry, "v2", "v1")
    before = registry.champion(MODEL)

    with pytest.raises(PromotionConflict) as raised:
        _promote(registry, "v3", stale)

    assert f"expected {stale or 'no champion'}, found v2" in str(raised.value)
    assert "v3 was not promoted" in str(raised.value)
    assert registry.champion(MODEL) == before
    assert [entry.to_version for entry in registry.ledger(MODEL)] == ["v1", "v2"]


def _race(url: str, expected: str | None, versions: tuple[str, str]) -> dict[str, LedgerEntry | PromotionConflict]:
    """Two registries (as two runs would open) promote at the same moment from the same expected champion."""
    registries = [Registry(url) for _ in versions]
    start = threading.Barrier(len(versions))
    results: dict[str, LedgerEntry | PromotionConflict] = {}

    def run(registry: Registry, version: str) -> None:
        start.wait()
        try:
            results[version] = _promote(registry, version, expected)
        except PromotionConflict as conflict:
            results[version] = conflict

    threads = [threading.Thread(target=run, args=pair) for pair in zip(registries, versions, strict=True)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for registry in registries:
            registry.close()
    assert set(results) == set(versions), "a racing promotion raised something other than PromotionConflict"
    return results


def _check_races(url: str) -> None:
    # The first promotion: both runs saw no champion.
    results = _race(url, None, ("a1", "b1"))
    winners = [version for version, result in results.items() if isinstance(result, LedgerEntry)]
    losers = [result for result in results.values() if isinstance(result, PromotionConflict)]
    assert len(winners) == 1 and len(losers) == 1
    registry = Registry(url)
    try:
        champion = registry.champion(MODEL)
        assert champion is not None and champion.version == winners[0]
        assert [entry.to_version for entry in registry.ledger(MODEL)] == winners
    finally:
        registry.close()

    # Later promotions: both runs started from that champion.
    first = winners[0]
    results = _race(url, first, ("a2", "b2"))
    winners = [version for version, result in results.items() if isinstance(result, LedgerEntry)]
    losers = [result for result in results.values() if isinstance(result, PromotionConflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert f"found {winners[0]}" in str(losers[0])
    registry = Registry(url)
    try:
        champion = registry.champion(MODEL)
        assert champion is not None and champion.version == winners[0]
        ledger = registry.ledger(MODEL)
        assert [(entry.from_version, entry.to_version) for entry in ledger] == [(None, first), (first, winners[0])]
    finally:
        registry.close()


def test_racing_promotions_on_sqlite_have_one_winner(sqlite_url: str) -> None:
    _check_races(sqlite_url)


@pytest.mark.integration
def test_racing_promotions_on_postgres_have_one_winner(postgres_url: str) -> None:
    _check_races(postgres_url)

    registry = Registry(postgres_url)
    try:
        champion = registry.champion(MODEL)
        assert champion is not None
        with pytest.raises(PromotionConflict):
            _promote(registry, "stale", "a1" if champion.version != "a1" else "b1")
        assert registry.champion(MODEL) == champion
        assert len(registry.ledger(MODEL)) == 2
    finally:
        registry.close()


def _decision(accepted: bool = True) -> GateDecision:
    return GateDecision(
        accepted=accepted,
        reason="roc_auc 0.9100 vs champion v1 0.9000",
        metric="roc_auc",
        maximize=True,
        challenger=0.91,
        champion=0.90,
        champion_version="v1",
        improvement=0.01,
        min_metric=0.85,
        min_improvement=0.002,
        holdout_rows=600,
        holdout_digest="d" * 64,
    )


@pytest.fixture
def champion_at() -> Callable[[str], Champion]:
    def make(version: str) -> Champion:
        from datetime import UTC, datetime

        return Champion(MODEL, version, datetime.now(UTC))

    return make


def test_promote_version_uses_the_champion_the_run_started_from(
    project: Project, champion_at: Callable[[str], Champion]
) -> None:
    spec = load_spec(MODEL)
    assert read_champion.fn(spec) is None
    for version in ("v1", "v2", "v3"):
        mark_checked(open_registry(), MODEL, version)

    first = promote_version.fn(spec, version="v1", expected=None, decision=_decision(), flow_run_id="run-1")
    started_from = read_champion.fn(spec)
    assert started_from is not None and started_from.version == "v1"
    second = promote_version.fn(spec, version="v2", expected=started_from, decision=_decision(), flow_run_id="run-2")

    assert (first.from_version, second.from_version) == (None, "v1")
    assert "(flow run run-2)" in second.actor
    assert second.flow_run_id == "run-2"
    assert second.evidence["holdout_digest"] == "d" * 64
    champion = read_champion.fn(spec)
    assert champion is not None and champion.version == "v2"
    # The registry lives under the project's state directory.
    assert (project.state / "registry.db").is_file()

    with pytest.raises(PromotionConflict):
        promote_version.fn(spec, version="v3", expected=champion_at("v1"), decision=_decision(), flow_run_id="run-3")
    assert read_champion.fn(spec) == champion
    assert [entry.to_version for entry in open_registry().ledger(MODEL)] == ["v1", "v2"]


def test_register_version_keeps_the_lineage(project: Project, trained_fraud: Trained) -> None:
    lineage = trained_fraud.lineage().model_copy(update={"version": "abc123", "tag": "fraud:abc123"})

    register_version.fn(trained_fraud.spec, lineage=lineage, decision=_decision())

    record = open_registry().version(MODEL, "abc123")
    assert record.tag == "fraud:abc123"
    assert record.lineage == lineage
    assert record.lineage.data_fingerprint == trained_fraud.batch.fingerprint
    with pytest.raises(StoreError, match="versions: abc123"):
        open_registry().version(MODEL, "zzz")


def test_record_gate_decision_keeps_every_decision(project: Project) -> None:
    spec = load_spec(MODEL)
    record_gate_decision.fn(spec, decision=_decision(accepted=False), flow_run_id="run-1")
    record_gate_decision.fn(spec, decision=_decision(accepted=True), flow_run_id=None)

    records = open_registry().gate_decisions(MODEL)

    assert [record.accepted for record in records] == [True, False]  # newest first
    assert records[1].flow_run_id == "run-1"
    assert records[0].evidence == _decision().as_dict()


def test_a_batch_is_claimed_once_and_an_expired_claim_can_be_taken_over(registry: Registry) -> None:
    assert registry.claim_batch(MODEL, "f" * 64, "a.parquet")
    assert registry.claim_batch(MODEL, "f" * 64, "copy-of-a.parquet").outcome == "busy"  # in progress (this process)
    report = _report("f" * 64)
    registry.finish_batch(MODEL, "f" * 64, status=BatchStatus.ACCEPTED, drift_detected=True, drift=report)
    assert registry.claim_batch(MODEL, "f" * 64, "a.parquet").outcome == "duplicate"  # done: never again
    record = registry.batch(MODEL, "f" * 64)
    assert record is not None and record.status is BatchStatus.ACCEPTED and record.drift == report

    assert registry.claim_batch(MODEL, "e" * 64, "b.parquet", ttl_s=0)
    assert registry.claim_batch(MODEL, "e" * 64, "b.parquet").outcome == "taken_over"  # its lease expired
    assert [b.fingerprint for b in registry.batches(MODEL, status=BatchStatus.ACCEPTED)] == ["f" * 64]


def test_a_replayed_batch_can_be_claimed_again_once(registry: Registry) -> None:
    fingerprint = "d" * 64
    assert registry.claim_batch(MODEL, fingerprint, "landing/a.parquet")
    assert not registry.release_batch(MODEL, fingerprint)  # being processed: not the replay's to release
    registry.finish_batch(MODEL, fingerprint, status="quarantined", stored_path="q/a.parquet")
    assert registry.claim_batch(MODEL, fingerprint, "landing/a.parquet", ttl_s=0).outcome == "duplicate"

    assert registry.release_batch(MODEL, fingerprint)
    record = registry.batch(MODEL, fingerprint)
    assert record is not None and record.status is BatchStatus.REPLAYED
    assert not registry.release_batch(MODEL, fingerprint)  # released once

    assert registry.claim_batch(MODEL, fingerprint, "landing/a.parquet")
    claimed = registry.batch(MODEL, fingerprint)
    assert claimed is not None and claimed.status is BatchStatus.PROCESSING and claimed.processed_at is None
    assert not registry.claim_batch(MODEL, fingerprint, "landing/a.parquet")  # one monitor run gets it


def test_an_accepted_batch_is_never_released(registry: Registry) -> None:
    assert registry.claim_batch(MODEL, "c" * 64, "a.parquet")
    registry.finish_batch(MODEL, "c" * 64, status="accepted")
    assert not registry.release_batch(MODEL, "c" * 64)
    assert not registry.release_batch(MODEL, "0" * 64)  # unknown
    assert registry.claim_batch(MODEL, "c" * 64, "a.parquet", ttl_s=0).outcome == "duplicate"


def test_a_lease_has_one_holder_until_released_or_expired(registry: Registry) -> None:
    assert registry.acquire("retrain:fraud", "run-1", ttl_s=60) is not None
    assert registry.acquire("retrain:fraud", "run-2", ttl_s=60) is None
    registry.release("retrain:fraud", "run-2")  # not the holder: nothing happens
    assert registry.lease("retrain:fraud").holder == "run-1"  # type: ignore[union-attr]
    registry.release("retrain:fraud", "run-1")
    assert registry.acquire("retrain:fraud", "run-2", ttl_s=0) is not None
    taken = registry.acquire("retrain:fraud", "run-3", ttl_s=60)  # run-2's lease has expired
    assert taken is not None and registry.lease("retrain:fraud").holder == "run-3"  # type: ignore[union-attr]


def test_racing_lease_takers_get_one_lease(sqlite_url: str) -> None:
    Registry(sqlite_url).close()
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def take(name: str) -> None:
        registry = Registry(sqlite_url)
        barrier.wait()
        if registry.acquire("retrain:fraud", name, ttl_s=60) is not None:
            winners.append(name)
        registry.close()

    threads = [threading.Thread(target=take, args=(f"run-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def _report(batch: str) -> DriftReport:
    """A drift report as the monitor scores it: a drifted feature, an undecided target."""
    tests = (drift.Test("shape", 0.05, 0.09, 0.108), drift.Test("location", 0.31, 0.1, 0.12))
    return DriftReport(
        model=MODEL,
        version="v2",
        batch=batch,
        reference="profiles/fraud/reference/v2.bin",
        rows=600,
        columns=(
            ColumnDrift(
                "amount", "numeric", "feature", "drift", 0.31, 0.12, 0.1, 0.06, 600, statistic="location", tests=tests
            ),
            ColumnDrift(
                "is_fraud",
                "categorical",
                "target",
                "insufficient_data",
                None,
                None,
                None,
                0.06,
                0,
                note="0 labeled rows",
            ),
        ),
        tests=3,
        report_path="reports/fraud/x.html",
    )


def test_a_drift_report_round_trips_through_its_stored_form() -> None:
    report = _report("f" * 64)
    assert DriftReport.from_dict(report.as_dict()) == report
    assert "legacy" not in report.as_dict()  # reports scored today are stored as before


def test_versions_read_as_lineage_and_decisions_as_decisions(registry: Registry) -> None:
    lineage = make_lineage(MODEL, "v1", window=["a.parquet"])
    registry.record_version(MODEL, "v1", "fraud:v1", lineage)
    (record,) = registry.versions(MODEL)
    assert record.lineage == lineage and record.lineage.window == ["a.parquet"]

    registry.record_decision(MODEL, Decision.RETRAIN_REQUESTED, "drift in 1 of 1", "f" * 64, "run-1")
    registry.record_decision(MODEL, Decision.NO_DRIFT, "no drift", "e" * 64, "run-2")
    (requested,) = registry.decisions(MODEL, decision=Decision.RETRAIN_REQUESTED)
    assert requested.decision is Decision.RETRAIN_REQUESTED and requested.fingerprint == "f" * 64
    assert [d.decision for d in registry.decisions(MODEL)] == [Decision.NO_DRIFT, Decision.RETRAIN_REQUESTED]


def test_a_lineage_that_does_not_read_names_the_version_and_the_field(registry: Registry) -> None:
    from driftline.registry.schema import versions

    with registry.engine.begin() as connection:
        connection.execute(
            versions.insert().values(
                model=MODEL, version="v9", tag="fraud:v9", created_at=sa.func.now(), lineage={"model": MODEL}
            )
        )
    with pytest.raises(StoreError, match=r"fraud:v9: the registry's lineage does not read as a Lineage: reason"):
        registry.version(MODEL, "v9")


@pytest.fixture
def legacy_registry(tmp_path: Path) -> Iterator[Registry]:
    """A SQLite registry written by the code before typed reads (tests/fixtures/make_legacy_registry.py)."""
    import sqlite3

    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((REPO / "tests" / "fixtures" / "legacy-registry.sql").read_text())
    connection.close()
    registry = Registry(f"sqlite:///{path}")
    yield registry
    registry.close()


def test_a_registry_written_before_typed_reads_still_reads(legacy_registry: Registry) -> None:
    registry = legacy_registry
    champion = registry.champion(MODEL)
    assert champion is not None and champion.version == "v2" and champion.since.tzinfo is not None
    first, latest = registry.version(MODEL, "v1").lineage, registry.version(MODEL, "v2").lineage
    # The first lineages lacked the window, the drift event and the digests: they read with their defaults.
    assert first.window == [] and first.drift_event is None and first.spec_digest is None
    assert first.identity().differences(latest.identity()) == ["spec digest"]
    assert latest.window == ["/state/batches/fraud/aaaa-late.parquet"] and latest.drift_event is not None
    assert [(e.action, e.from_version, e.to_version) for e in registry.ledger(MODEL)] == [
        ("promote", None, "v1"),
        ("promote", "v1", "v2"),
    ]

    statuses = {b.fingerprint[0]: b.status for b in registry.batches(MODEL)}
    assert statuses == {"1": "accepted", "2": "window", "3": "quarantined", "4": "replayed", "5": "processing"}
    assert all(isinstance(status, BatchStatus) for status in statuses.values())

    uncalibrated = registry.batch(MODEL, "1" * 64)
    assert uncalibrated is not None and uncalibrated.drift is not None and uncalibrated.drift.legacy
    assert [c.column for c in uncalibrated.drift.drifted] == ["amount"]
    assert [c.status for c in uncalibrated.drift.columns] == ["drift", "ok", "unscorable"]
    # Results from before statuses existed count as their recorded flag, as they always did.
    assert policy.flagged(uncalibrated.drift, ["target"], fallback=uncalibrated.drift_detected) is True
    assert DriftReport.from_dict(uncalibrated.drift.as_dict()) == uncalibrated.drift

    calibrated = registry.batch(MODEL, "2" * 64)
    assert calibrated is not None and calibrated.drift is not None and not calibrated.drift.legacy
    assert calibrated.drift.kinds() == ["feature"] and calibrated.drift.columns[0].tests[1].statistic == "location"
    assert calibrated.drift.as_dict()["statuses"] == {"drift": 1, "ok": 0, "insufficient_data": 1, "unscorable": 0}
    assert policy.flagged(calibrated.drift, ["target"]) is False

    decisions = registry.decisions(MODEL)
    assert [d.decision for d in decisions][:2] == [Decision.RETRAIN_PROMOTED, Decision.RETRAIN_STARTED]
    assert registry.decisions(MODEL, decision=Decision.RETRAIN_REQUESTED)[0].reason == "the retrain_requested reason"
    lease = registry.lease("retrain:fraud")
    assert lease is not None and lease.holder == "run-3"

    # And the old registry takes new writes: a replayed batch is claimed again; a claim from before leases (no
    # holder, no expiry) made over an hour ago is taken over, and the claim now carries a lease.
    assert registry.claim_batch(MODEL, "4" * 64, "landing/4444.parquet").outcome == "claimed"
    assert registry.claim_batch(MODEL, "5" * 64, "landing/5555.parquet").outcome == "taken_over"
    taken = registry.batch(MODEL, "5" * 64)
    assert taken is not None and taken.holder is not None and taken.lease_expires_at is not None


def test_typed_reads_on_postgresql(postgres_url: str) -> None:
    registry = Registry(postgres_url)
    try:
        lineage = make_lineage(MODEL, "v1", window=["a.parquet"])
        registry.record_version(MODEL, "v1", "fraud:v1", lineage)
        assert registry.version(MODEL, "v1").lineage == lineage
        report = _report("f" * 64)
        assert registry.claim_batch(MODEL, "f" * 64, "a.parquet")
        registry.finish_batch(MODEL, "f" * 64, status=BatchStatus.WINDOW, drift=report, drift_detected=True)
        (record,) = registry.batches(MODEL, status=(BatchStatus.ACCEPTED, BatchStatus.WINDOW))
        assert record.status is BatchStatus.WINDOW and record.drift == report
        registry.record_decision(MODEL, Decision.RETRAIN_REQUESTED, "drift", "f" * 64)
        (decision,) = registry.decisions(MODEL, decision=Decision.RETRAIN_REQUESTED)
        assert decision.decision is Decision.RETRAIN_REQUESTED and decision.at.tzinfo is not None
    finally:
        registry.close()


def test_a_read_only_registry_is_an_error_naming_it_and_the_operation(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    Registry(f"sqlite:///{path}").close()  # the tables exist; now open it read-only
    registry = Registry(f"sqlite:///file:{path}?mode=ro&uri=true")

    with pytest.raises(
        StoreError, match=r"registry sqlite:///file.*registry\.db.*: cannot record a version: "
    ) as raised:
        registry.record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1"))

    assert "readonly" in str(raised.value) and "nothing was written" in str(raised.value)
    assert registry.versions("fraud") == []  # reads still work


def test_a_locked_registry_is_retried_briefly_then_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import threading

    from driftline import registry as registry_module

    path = tmp_path / "registry.db"
    registry = Registry(f"sqlite:///{path}?timeout=0.1")  # SQLite's own wait for the lock, shortened for the test
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(registry_module, "LOCK_RETRY_SECONDS", (0.05, 0.05))

    with pytest.raises(StoreError, match="cannot record a version: database is locked; another process holds"):
        registry.record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1"))

    monkeypatch.setattr(registry_module, "LOCK_RETRY_SECONDS", (0.5,))
    threading.Timer(0.2, lambda: holder.execute("COMMIT")).start()  # the other writer finishes during the retry
    registry.record_version("fraud", "v1", "fraud:v1", make_lineage("fraud", "v1"))
    holder.close()
    assert [v.version for v in registry.versions("fraud")] == ["v1"]
