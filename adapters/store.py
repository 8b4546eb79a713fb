"""`LORALEDGER_DATABASE_URL` -> the eventsourcing environment that selects and configures the store.

`sqlite:///PATH` (a file, in WAL mode; `:memory:` is refused because each pooled connection of a
threaded server would see its own empty database) or `postgresql://user:pass@host:port/db`
(`?schema=NAME` keeps several ledgers apart in one database; libpq's own options, such as
`?sslmode=require` or `application_name=…`, are passed to every connection: the store's pool
and the direct ones made here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

# eventsourcing's PostgreSQL store takes only host, port, user, password and database name; our
# factory (adapters/postgres_factory.py) adds the URL's other libpq options, kept here as conninfo.
POSTGRES_FACTORY = "loraledger.adapters.postgres_factory:PostgresFactoryWithOptions"
LIBPQ_OPTIONS = "POSTGRES_LIBPQ_OPTIONS"
_CONNECTION_KEYS = ("dbname", "host", "port", "user", "password")


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
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = urlsplit(database_url)
    # `schema` is ours; every other query option is libpq's, handed over undecoded.
    options, schemas = [], []
    for item in parts.query.split("&") if parts.query else []:
        name, _, value = item.partition("=")
        if unquote(name) == "schema":
            schemas.append(unquote(value))
        else:
            options.append(item)
    libpq_url = urlunsplit(("postgresql", parts.netloc, parts.path, "&".join(options), ""))
    try:
        params = {key: str(value) for key, value in conninfo_to_dict(libpq_url).items()}
    except Error as error:
        raise StoreConfigError(f"LORALEDGER_DATABASE_URL: {_first_line(error)}") from None
    if not params.get("dbname"):
        raise StoreConfigError("LORALEDGER_DATABASE_URL: the PostgreSQL URL names no database")
    extra = {key: value for key, value in params.items() if key not in _CONNECTION_KEYS}
    env = {
        "PERSISTENCE_MODULE": POSTGRES_FACTORY,
        "POSTGRES_DBNAME": params["dbname"],
        "POSTGRES_HOST": params.get("host") or "127.0.0.1",
        "POSTGRES_PORT": params.get("port") or "5432",
        "POSTGRES_USER": params.get("user") or "postgres",
        "POSTGRES_PASSWORD": params.get("password") or "",
        LIBPQ_OPTIONS: make_conninfo(**extra),
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "y",
    }
    if schemas and schemas[0]:
        env["POSTGRES_SCHEMA"] = schemas[0]
    return env


def prepare_store(database_url: str) -> None:
    """Create what the store's tables live in: the folder of a SQLite file, a PostgreSQL schema.

    PostgreSQL is connected to once, with the URL's options: a server that refuses them (no SSL
    for `sslmode=require`, a bad option value) is a one-line `StoreConfigError`, not a traceback.
    """
    env = store_env(database_url)
    if "SQLITE_DBNAME" in env:
        Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
    if "POSTGRES_DBNAME" not in env:
        return
    import psycopg
    from psycopg import sql

    schema = env.get("POSTGRES_SCHEMA")
    try:
        with postgres_connection(database_url) as connection:
            if schema is not None:
                connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.Error as error:
        raise StoreConfigError(
            f"LORALEDGER_DATABASE_URL: cannot use PostgreSQL: {_first_line(error)}"
        ) from None


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


def postgres_connection(database_url: str, **extra: Any) -> psycopg.Connection[Any]:
    """A plain autocommit connection for set-up and checks (the store has its own pool); `extra`
    libpq options are used unless the URL sets them."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    env = store_env(database_url, create=False)
    options: dict[str, Any] = {"connect_timeout": env["POSTGRES_CONNECT_TIMEOUT"], **extra}
    options.update(conninfo_to_dict(env[LIBPQ_OPTIONS]))  # the URL's own connect_timeout wins
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        autocommit=True,
        **options,
    )


def store_answers(database_url: str, application: Any) -> bool:
    """Whether the store answers now: one query, a few seconds at most, no retries."""
    env = store_env(database_url, create=False)
    if "POSTGRES_DBNAME" not in env:
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
