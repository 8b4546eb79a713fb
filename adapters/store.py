"""`LORALEDGER_DATABASE_URL` -> the eventsourcing environment that selects and configures the store.

`sqlite:///PATH` (a file, in WAL mode; `:memory:` is refused because each pooled connection of a
threaded server would see its own empty database) or `postgresql://user:pass@host:port/db`
(`?schema=NAME` keeps several ledgers apart in one database).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import psycopg


class StoreConfigError(ValueError):
    """A database URL the service cannot use; the message names the setting."""


def store_env(database_url: str, *, create: bool = True) -> dict[str, str]:
    """The eventsourcing settings for a database URL (`create=False`: use only what exists)."""
    env = _store_env(database_url)
    if not create and "CREATE_TABLE" in env:
        env["CREATE_TABLE"] = "n"
    return env


def _store_env(database_url: str) -> dict[str, str]:
    parts = urlsplit(database_url)
    if database_url == "memory://":
        # In-process only: dry runs and tests. Nothing is kept when the process ends.
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if parts.scheme == "sqlite":
        return _sqlite_env(database_url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return _postgres_env(database_url)
    raise StoreConfigError(
        f"LORALEDGER_DATABASE_URL: unsupported scheme {parts.scheme!r} "
        "(use sqlite:///PATH or postgresql://user:pass@host:port/db)"
    )


def _sqlite_env(database_url: str) -> dict[str, str]:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or len(database_url) == len(prefix):
        raise StoreConfigError("LORALEDGER_DATABASE_URL: write sqlite:///PATH (PATH relative or /absolute)")
    path = database_url[len(prefix) :]
    if path == ":memory:" or "mode=memory" in path:
        raise StoreConfigError(
            "LORALEDGER_DATABASE_URL: an in-memory SQLite database is not shared between the "
            "server's threads; give a file path"
        )
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "30",
        "CREATE_TABLE": "y",
    }


def _postgres_env(database_url: str) -> dict[str, str]:
    parts = urlsplit(database_url)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise StoreConfigError("LORALEDGER_DATABASE_URL: the PostgreSQL URL names no database")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "y",
    }
    schema = parse_qs(parts.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env


def prepare_store(database_url: str) -> None:
    """Create what the store's tables live in: the folder of a SQLite file, a PostgreSQL schema."""
    env = store_env(database_url)
    if "SQLITE_DBNAME" in env:
        Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
    schema = env.get("POSTGRES_SCHEMA")
    if schema is None:
        return
    from psycopg import sql

    with postgres_connection(database_url) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def store_exists(database_url: str) -> bool:
    """Whether the store already holds a ledger (without creating anything to find out)."""
    env = store_env(database_url, create=False)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.popo":
        return False
    if "SQLITE_DBNAME" in env:
        return Path(env["SQLITE_DBNAME"]).is_file()
    import psycopg

    try:
        with postgres_connection(database_url) as connection:
            schema = env.get("POSTGRES_SCHEMA", "public")
            row = connection.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                (schema, "loraledger_events"),
            ).fetchone()
            return row is not None
    except psycopg.Error as error:
        raise StoreConfigError(
            f"LORALEDGER_DATABASE_URL: cannot reach PostgreSQL ({type(error).__name__})"
        ) from None


def postgres_connection(database_url: str) -> psycopg.Connection[Any]:
    """A plain autocommit connection for set-up and checks (the store has its own pool)."""
    import psycopg

    env = store_env(database_url, create=False)
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
        autocommit=True,
    )


def store_answers(database_url: str, application: Any) -> bool:
    """Whether the store answers now: one query, a few seconds at most, no retries."""
    env = store_env(database_url, create=False)
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        try:
            application.recorder.max_notification_id()
        except Exception:  # any failure of the store means "not healthy"
            return False
        return True
    import psycopg

    try:
        with postgres_connection(database_url) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


# Errors that mean the store refuses writes while it may still answer reads.
_SQLITE_REFUSALS = {8: "the database is read-only", 10: "disk I/O error", 13: "the disk is full"}
_POSTGRES_REFUSALS = {
    "53100": "the disk is full",
    "25006": "the database is read-only",
    "58030": "disk I/O error",
}


def write_refusal(error: BaseException | None) -> str | None:
    """Why the store refused a write when that is the store's own state (disk full, read-only,
    I/O error), else None (no error, a conflict, bad data, or a connection that failed: a
    connection that fails shows in `store_answers` already)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        sqlite_code = getattr(error, "sqlite_errorcode", None)  # the primary code is the low byte
        if isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_REFUSALS:
            return f"{_SQLITE_REFUSALS[sqlite_code & 0xFF]} ({_first_line(error)})"
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate in _POSTGRES_REFUSALS:
            return f"{_POSTGRES_REFUSALS[sqlstate]} ({_first_line(error)})"
        error = error.__cause__ or error.__context__
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
