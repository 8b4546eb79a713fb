"""`write_refusal`: which real driver errors mean "the store refuses writes" (for `/healthz`).

The errors are raised by SQLite and PostgreSQL themselves, then wrapped the way the event store
wraps them (`eventsourcing.persistence.*Error from <driver error>`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, InternalError, OperationalError, PersistenceError

from loraledger.adapters.store import postgres_connection, write_refusal
from tests.support.stores import POSTGRES_URL_VARIABLE, postgres_url


def _wrapped(error: Exception, wrapper: type[PersistenceError]) -> PersistenceError:
    try:
        raise wrapper(str(error)) from error
    except PersistenceError as wrapped:
        return wrapped


def _sqlite_error(path: Path, *statements: str, uri: str | None = None) -> sqlite3.Error:
    with contextlib.closing(sqlite3.connect(uri or str(path), uri=uri is not None)) as db:
        try:
            for statement in statements:
                db.execute(statement)
            db.commit()
        except sqlite3.Error as error:
            return error
    raise AssertionError("no error was raised")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, data BLOB)")
        db.execute("INSERT INTO events VALUES (1, x'00')")
        db.commit()
    return path


def test_sqlite_read_only_database_is_a_refusal(table: Path) -> None:
    error = _sqlite_error(table, "INSERT INTO events VALUES (2, x'00')", uri=f"file:{table}?mode=ro")

    assert write_refusal(_wrapped(error, OperationalError)) == (
        "the database is read-only (attempt to write a readonly database)"
    )


def test_sqlite_full_database_is_a_refusal(table: Path) -> None:
    error = _sqlite_error(
        table,
        "PRAGMA max_page_count = 3",
        "INSERT INTO events (data) SELECT randomblob(100000)",
    )

    assert write_refusal(_wrapped(error, OperationalError)) == "the disk is full (database or disk is full)"


def test_sqlite_conflicts_and_other_errors_are_no_refusal(table: Path) -> None:
    conflict = _sqlite_error(table, "INSERT INTO events VALUES (1, x'00')")
    syntax = _sqlite_error(table, "INSERT INTO nowhere VALUES (1)")

    assert write_refusal(_wrapped(conflict, IntegrityError)) is None
    assert write_refusal(_wrapped(syntax, OperationalError)) is None
    assert write_refusal(None) is None
    assert write_refusal(ValueError("not JSON")) is None


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sqlstate", "wrapper", "expected"),
    [
        ("53100", OperationalError, "the disk is full (could not extend file)"),
        ("25006", InternalError, "the database is read-only (could not extend file)"),
        ("58030", OperationalError, "disk I/O error (could not extend file)"),
        ("23505", IntegrityError, None),  # a conflict
        ("53300", OperationalError, None),  # too many connections: the store does not answer
    ],
)
def test_postgresql_refusals_by_sqlstate(
    sqlstate: str, wrapper: type[PersistenceError], expected: str | None
) -> None:
    import psycopg

    url = postgres_url()
    if url is None:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    with postgres_connection(url) as connection, pytest.raises(psycopg.Error) as raised:
        connection.execute(
            f"DO $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '{sqlstate}'; END $$"
        )
    assert raised.value.sqlstate == sqlstate

    assert write_refusal(_wrapped(raised.value, wrapper)) == expected
