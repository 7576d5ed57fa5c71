"""Batch claims are leases: a dead or expired holder is taken over, a live one makes the batch busy, and only a
finished batch makes the same content a duplicate. Also the retrain lease's dead-holder rule and the migration."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftline.registry import BatchStatus, Registry, Renewer, holder_dead, holder_for

MODEL = "fraud"
FINGERPRINT = "a" * 64


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(f"sqlite:///{tmp_path / 'claims.db'}")
    yield registry
    registry.close()


@pytest.fixture
def dead_holder() -> str:
    """The holder name of a process on this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:run-dead"


def test_holder_names_this_process_and_tells_a_dead_one(dead_holder: str) -> None:
    me = holder_for("run-1")
    assert me == f"{socket.gethostname()}:{__import__('os').getpid()}:run-1"
    assert not holder_dead(me)
    assert holder_dead(dead_holder)
    # Another host's process cannot be checked from here, nor a holder that names no process: trusted until expiry.
    assert not holder_dead("elsewhere.example:1:run-2")
    assert not holder_dead("run-3") and not holder_dead(None)


def test_a_live_holder_makes_the_batch_busy_not_a_duplicate(registry: Registry) -> None:
    first = registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder="elsewhere.example:1:run-1")
    assert first and first.outcome == "claimed"

    second = registry.claim_batch(MODEL, FINGERPRINT, "landing/copy-of-a.csv", holder=holder_for("run-2"))

    assert not second and second.outcome == "busy"
    assert second.previous is not None and second.previous.holder == "elsewhere.example:1:run-1"
    record = registry.batch(MODEL, FINGERPRINT)
    assert record is not None and record.status is BatchStatus.PROCESSING and record.origin == "landing/a.csv"


def test_a_dead_holders_claim_is_taken_over_before_it_expires(registry: Registry, dead_holder: str) -> None:
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=dead_holder, ttl_s=3600)

    taken = registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder_for("run-2"))

    assert taken and taken.outcome == "taken_over" and taken.previous is not None
    assert taken.previous.holder == dead_holder
    record = registry.batch(MODEL, FINGERPRINT)
    assert record is not None and record.holder == holder_for("run-2") and record.status is BatchStatus.PROCESSING


def test_an_expired_claim_is_taken_over_and_its_old_holder_cannot_record(registry: Registry) -> None:
    old = "elsewhere.example:1:run-1"
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=old, ttl_s=0)
    new = holder_for("run-2")
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=new).outcome == "taken_over"

    # The stalled old holder wakes up: it can neither renew nor record, so the batch is recorded once.
    assert not registry.renew_batch(MODEL, FINGERPRINT, old)
    assert not registry.finish_batch(MODEL, FINGERPRINT, holder=old, status=BatchStatus.ACCEPTED)
    assert registry.finish_batch(MODEL, FINGERPRINT, holder=new, status=BatchStatus.ACCEPTED, rows=3)
    record = registry.batch(MODEL, FINGERPRINT)
    assert record is not None and record.status is BatchStatus.ACCEPTED and record.rows == 3
    assert record.holder == new and record.lease_expires_at is None


def test_renewing_keeps_the_claim_from_expiring(registry: Registry) -> None:
    holder = "elsewhere.example:1:run-1"
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder, ttl_s=0)
    assert registry.renew_batch(MODEL, FINGERPRINT, holder, ttl_s=60)
    record = registry.batch(MODEL, FINGERPRINT)
    assert record is not None and record.lease_expires_at is not None
    assert record.lease_expires_at - record.claimed_at > timedelta(seconds=59)
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder_for("run-2")).outcome == "busy"


def test_a_released_claim_is_claimed_again_at_once_not_a_duplicate(registry: Registry) -> None:
    holder = holder_for("run-1")
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder)
    assert not registry.give_back_batch(MODEL, FINGERPRINT, "elsewhere.example:1:run-9")  # not the holder
    assert registry.give_back_batch(MODEL, FINGERPRINT, holder)
    record = registry.batch(MODEL, FINGERPRINT)
    assert record is not None and record.status is BatchStatus.RELEASED and record.holder == holder

    again = registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder_for("run-2"))

    assert again and again.outcome == "claimed" and again.previous is not None
    assert again.previous.status is BatchStatus.RELEASED
    assert not registry.give_back_batch(MODEL, FINGERPRINT, holder)  # run-1 gave it back once; run-2 holds it now


@pytest.mark.parametrize("status", [BatchStatus.ACCEPTED, BatchStatus.QUARANTINED, BatchStatus.WINDOW])
def test_only_finished_content_is_a_duplicate(registry: Registry, status: BatchStatus) -> None:
    holder = holder_for("run-1")
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder)
    assert registry.finish_batch(MODEL, FINGERPRINT, holder=holder, status=status)

    repeat = registry.claim_batch(MODEL, FINGERPRINT, "landing/b.csv", holder=holder_for("run-2"), ttl_s=0)

    assert not repeat and repeat.outcome == "duplicate"
    assert not registry.give_back_batch(MODEL, FINGERPRINT, holder)  # a finished batch is never released


def test_the_renewer_extends_the_lease_until_stopped_and_notices_a_takeover(registry: Registry) -> None:
    holder = holder_for("run-1")
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder, ttl_s=0.3)
    with Renewer(lambda: registry.renew_batch(MODEL, FINGERPRINT, holder, ttl_s=0.3), 0.05, "a.csv") as renewer:
        time.sleep(0.6)  # twice the lease: without renewal it would have expired
        assert not registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder="elsewhere.example:1:x")
        assert not renewer.lost
    time.sleep(0.4)
    assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder="elsewhere.example:1:x")  # expired now

    with Renewer(lambda: registry.renew_batch(MODEL, FINGERPRINT, holder, ttl_s=0.3), 0.05, "a.csv") as renewer:
        time.sleep(0.3)
        assert renewer.lost  # the claim is someone else's: the renewer says so and stops


def _race(url: str, dead: str | None) -> list[str]:
    """Eight runs claim one batch at once (optionally over a dead holder's claim); the outcomes they got."""
    setup = Registry(url)
    if dead is not None:
        assert setup.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=dead, ttl_s=3600)
    setup.close()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def claim(index: int) -> None:
        registry = Registry(url)
        barrier.wait()
        claim = registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder_for(f"run-{index}"))
        outcomes.append(claim.outcome)
        registry.close()

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.parametrize("over_a_dead_holder", [False, True])
def test_racing_claims_on_sqlite_have_one_winner(tmp_path: Path, dead_holder: str, over_a_dead_holder: bool) -> None:
    outcomes = _race(f"sqlite:///{tmp_path / 'race.db'}", dead_holder if over_a_dead_holder else None)
    won = "taken_over" if over_a_dead_holder else "claimed"
    assert outcomes == ["busy"] * 7 + [won]


@pytest.mark.integration
@pytest.mark.parametrize("over_a_dead_holder", [False, True])
def test_racing_claims_on_postgres_have_one_winner(
    postgres_url: str,
    dead_holder: str,
    over_a_dead_holder: bool,
) -> None:
    outcomes = _race(postgres_url, dead_holder if over_a_dead_holder else None)
    won = "taken_over" if over_a_dead_holder else "claimed"
    assert outcomes == ["busy"] * 7 + [won]


def test_a_dead_retrain_holder_loses_its_lease_a_live_one_keeps_it(registry: Registry, dead_holder: str) -> None:
    assert registry.acquire("retrain:fraud", dead_holder, ttl_s=7200) is not None
    taken = registry.acquire("retrain:fraud", holder_for("run-2"), ttl_s=7200)
    assert taken is not None and registry.lease("retrain:fraud").holder == holder_for("run-2")  # type: ignore[union-attr]
    assert registry.acquire("retrain:fraud", holder_for("run-3"), ttl_s=7200) is None  # run-2 is this live process
    assert registry.renew("retrain:fraud", holder_for("run-2"), ttl_s=60)
    assert not registry.renew("retrain:fraud", dead_holder, ttl_s=60)


def _old_batches_table(url: str) -> None:
    """The batches table as driftline wrote it before leases (no holder, no lease expiry), with a fresh claim."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE batches (model VARCHAR(200) NOT NULL, fingerprint VARCHAR(64) NOT NULL, "
                "origin TEXT NOT NULL, status VARCHAR(20) NOT NULL, stored_path TEXT, rows INTEGER, "
                "champion_version VARCHAR(200), drift_detected BOOLEAN, drift JSON, profile_path TEXT, "
                "report_path TEXT, flow_run_id VARCHAR(64), claimed_at TIMESTAMP WITH TIME ZONE NOT NULL, "
                "processed_at TIMESTAMP WITH TIME ZONE, PRIMARY KEY (model, fingerprint))"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO batches (model, fingerprint, origin, status, claimed_at) "
                "VALUES ('fraud', :fresh, 'landing/fresh.csv', 'processing', CURRENT_TIMESTAMP)"
            ),
            {"fresh": "b" * 64},
        )
    engine.dispose()


def _check_migration(url: str) -> None:
    _old_batches_table(url)
    registry = Registry(url)  # opening adds the lease columns
    try:
        columns = {column["name"] for column in sa.inspect(registry.engine).get_columns("batches")}
        assert {"holder", "lease_expires_at"} <= columns
        old = registry.batch(MODEL, "b" * 64)
        assert old is not None and old.holder is None and old.lease_expires_at is None
        # A claim from before leases keeps the old rule (an hour): a fresh one is busy, not a duplicate.
        assert registry.claim_batch(MODEL, "b" * 64, "landing/fresh.csv").outcome == "busy"
        assert registry.claim_batch(MODEL, FINGERPRINT, "landing/a.csv", holder=holder_for("run-1"))
        Registry(url).close()  # opening a migrated registry again changes nothing
    finally:
        registry.close()


def test_an_sqlite_registry_from_before_leases_is_migrated_on_open(tmp_path: Path) -> None:
    _check_migration(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.integration
def test_a_postgres_registry_from_before_leases_is_migrated_on_open(postgres_url: str) -> None:
    _check_migration(postgres_url)
