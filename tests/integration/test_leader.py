"""Leadership among processes of one store: one holder at a time, freed when its holder goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from loraledger.adapters.leader import FileLeaderLock, PostgresLeaderLock, leader_lock_for
from tests.support.stores import fresh_postgres_url


def test_a_sqlite_store_has_one_leader_at_a_time_and_a_released_lock_is_taken_by_another(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first, second = leader_lock_for(url), leader_lock_for(url)
    assert isinstance(first, FileLeaderLock) and first.path == tmp_path / "ledger.db.leader"

    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    first.release()
    assert second.acquire() and not first.held()
    second.release()


@pytest.mark.postgres
def test_a_postgresql_store_has_one_leader_and_a_lost_connection_frees_the_lock() -> None:
    url = fresh_postgres_url()
    first, second = PostgresLeaderLock(url), PostgresLeaderLock(url)
    elsewhere = PostgresLeaderLock(fresh_postgres_url())  # another store in the same database
    try:
        assert first.acquire() and first.held()
        assert not second.acquire()
        assert elsewhere.acquire()  # its own leader
        first._connection.close()  # as when the process dies: its session ends
        assert not first.held()
        assert second.acquire() and second.held()
        assert not first.acquire()
    finally:
        for lock in (first, second, elsewhere):
            lock.release()


def test_a_database_that_cannot_be_reached_means_not_leading_rather_than_an_error() -> None:
    lock = PostgresLeaderLock("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert not lock.acquire() and not lock.held()
