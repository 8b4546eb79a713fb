"""Leadership among the `serve` processes of one store: only the leader consumes the queue and runs
the schedules.

PostgreSQL: a session-level advisory lock, taken on a connection of its own that nothing else uses
(never a pooled one): a process that dies loses its connection, and PostgreSQL frees the lock at
once when the connection's socket closes (a machine that vanishes without closing it is noticed by
TCP keepalives). SQLite (one machine): an exclusive lock on a file beside the database, which the
operating system frees when the process dies. An in-memory store has one process: it leads.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from loraledger.adapters.store import postgres_connection, store_env

log = logging.getLogger("loraledger.leader")

# TCP keepalives on the lock's connection: a leader whose machine vanished is noticed in ~15 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free; True while this process holds it."""

    def held(self) -> bool:
        """Whether this process still holds it (False once its connection was lost)."""

    def release(self) -> None: ...


def leader_lock_key(database_url: str) -> int:
    """The store's advisory lock key (a bigint): advisory locks are per database, and stores in two
    schemas of one database are two stores, each with its own leader."""
    schema = store_env(database_url, create=False).get("POSTGRES_SCHEMA") or "public"
    digest = hashlib.sha256(f"loraledger/leader/{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLeaderLock:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.key = leader_lock_key(database_url)
        self._connection: Any = None
        self._holding = False

    def acquire(self) -> bool:
        if self._holding:
            return self.held()
        try:
            if self._connection is None:
                self._connection = postgres_connection(self.database_url, **KEEPALIVES)
                self._connection.execute("SELECT set_config('application_name', 'loraledger-leader', false)")
            row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except Exception as error:  # the database is away: not leading, try again later
            log.warning("leadership cannot be asked for: %s", type(error).__name__)
            self._drop()
            return False
        self._holding = bool(row and row[0])
        return self._holding

    def held(self) -> bool:
        if not self._holding or self._connection is None:
            return False
        try:
            self._connection.execute("SELECT 1")
        except Exception:  # the connection is gone, and the lock with it
            self._drop()
            return False
        return True

    def release(self) -> None:
        self._drop()  # closing the connection frees the session's lock

    def _drop(self) -> None:
        self._holding = False
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to free
                self._connection.close()
            self._connection = None


class FileLeaderLock:
    """An exclusive `flock` on a file: held until released or the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor frees the lock
            self._fd = None


class SoleProcessLock:
    """An in-memory store: this process is the only one, so it leads."""

    def __init__(self) -> None:
        self._holding = False

    def acquire(self) -> bool:
        self._holding = True
        return True

    def held(self) -> bool:
        return self._holding

    def release(self) -> None:
        self._holding = False


def leader_lock_for(database_url: str) -> LeaderLock:
    if database_url.startswith(("postgresql", "postgres")):
        return PostgresLeaderLock(database_url)
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
        return FileLeaderLock(database.with_name(database.name + ".leader"))
    return SoleProcessLock()
