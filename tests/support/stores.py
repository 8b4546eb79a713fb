"""Event stores for tests: a SQLite file per test, and PostgreSQL (a fresh schema per test).

PostgreSQL tests run when `LORALEDGER_TEST_POSTGRES_URL` is set (`.ci/run` sets it) and are
skipped otherwise, so a laptop without PostgreSQL can still run the rest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL_VARIABLE = "LORALEDGER_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


def fresh_postgres_url() -> str:
    """A URL for a new, empty schema in the test database."""
    base = postgres_url()
    if base is None:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}schema=t_{uuid.uuid4().hex[:12]}"


def drop_schema(database_url: str) -> None:
    from psycopg import sql

    from loraledger.adapters.store import postgres_connection, store_env

    env = store_env(database_url)
    with postgres_connection(database_url) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(env["POSTGRES_SCHEMA"]))
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    url = fresh_postgres_url()
    yield url
    drop_schema(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"
