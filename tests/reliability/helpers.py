"""What the reliability tests share: running things at once, reading the store and the files,
and a TCP proxy that can cut the service off from PostgreSQL.

Every test prints one `[reliability] ...` line with its figures (`pytest -s` shows them); the
table in docs/RELIABILITY.md is made of those lines.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.server import HTTP_TIMEOUT

SQLITE_TABLE = "stored_events"  # what eventsourcing calls the table in SQLite
POSTGRES_TABLE = "loraledger_events"  # and in PostgreSQL


def figures(label: str, **values: object) -> None:
    """One line of figures for the docs table."""
    shown = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in values.items())
    print(f"\n[reliability] {label}: {shown}")


# --------------------------------------------------------------------------- at once


def run_at_once(tasks: list[Callable[[httpx.Client], Any]], workers: int) -> list[Any]:
    """Run every task on `workers` threads (each with its own client); results in task order.

    A transport error is returned as its repr, never raised: a lost answer is a finding too.
    """
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()
    barrier = threading.Barrier(min(workers, len(tasks)))

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=HTTP_TIMEOUT * 4)
            with lock:
                clients.append(local.client)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=HTTP_TIMEOUT)  # the first requests leave together
        return local.client  # type: ignore[no-any-return]

    def run(task: Callable[[httpx.Client], Any]) -> Any:
        try:
            return task(client())
        except httpx.HTTPError as error:
            return repr(error)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(run, tasks))
    finally:
        for each in clients:
            each.close()


def server_errors(statuses: Iterable[object]) -> list[object]:
    """Answers that are not an HTTP status below 500 (5xx, or no answer at all)."""
    return [status for status in statuses if not (isinstance(status, int) and status < 500)]


# --------------------------------------------------------------------------- the store


def _sqlite_path(database_url: str) -> str:
    return database_url.removeprefix("sqlite:///")


def _pg_schema(database_url: str) -> str:
    return parse_qs(urlsplit(database_url).query).get("schema", ["public"])[0]


def store_rows(database_url: str, after: int = 0) -> list[tuple[int, str, str]]:
    """(notification id, originator id, topic) of every stored event after `after`, in log order."""
    if database_url.startswith("sqlite:"):
        path = _sqlite_path(database_url)
        if not Path(path).exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            try:
                rows = db.execute(
                    f"SELECT rowid, originator_id, topic FROM {SQLITE_TABLE} WHERE rowid > ? ORDER BY rowid",
                    (after,),
                ).fetchall()
            except sqlite3.OperationalError:  # no table yet
                return []
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
    from psycopg import errors, sql

    from loraledger.adapters.store import postgres_connection

    query = sql.SQL(
        "SELECT notification_id, originator_id::text, topic FROM {}.{} WHERE notification_id > %s "
        "ORDER BY notification_id"
    ).format(sql.Identifier(_pg_schema(database_url)), sql.Identifier(POSTGRES_TABLE))
    with postgres_connection(database_url) as connection:
        try:
            rows = connection.execute(query, (after,)).fetchall()
        except errors.UndefinedTable:
            return []
    return [(int(r[0]), str(r[1]).replace("-", ""), str(r[2])) for r in rows]


def event_count(database_url: str) -> int:
    """How many events the store holds (polled while a command runs, to kill it half-way)."""
    if database_url.startswith("sqlite:"):
        path = _sqlite_path(database_url)
        if not Path(path).exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            try:
                return int(db.execute(f"SELECT count(*) FROM {SQLITE_TABLE}").fetchone()[0])
            except sqlite3.OperationalError:
                return 0
    from psycopg import errors, sql

    from loraledger.adapters.store import postgres_connection

    query = sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(_pg_schema(database_url)), sql.Identifier(POSTGRES_TABLE)
    )
    with postgres_connection(database_url) as connection:
        try:
            row = connection.execute(query).fetchone()
        except errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def event_type(topic: str) -> str:
    """`domain.training_version:TrainingVersion.CreatedFromS3` -> `CreatedFromS3`."""
    return topic.rpartition(".")[2]


def per_aggregate(rows: Iterable[tuple[int, str, str]], kind: str) -> Counter[str]:
    """How many events of type `kind` each aggregate has."""
    return Counter(originator for _, originator, topic in rows if event_type(topic) == kind)


# --------------------------------------------------------------------------- the files


def read_documents(output_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """{style id: entries} of every training_versions.json under the default layout."""
    documents = {}
    for path in sorted(output_dir.glob("*/training_versions.json")):
        documents[int(path.parent.name)] = json.loads(path.read_bytes())["versions"]
    return documents


def entry_keys(documents: dict[int, list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """(style, version, status, id, loraUrl) of every entry, sorted (duplicates kept)."""
    return sorted(
        (style, entry.get("name"), entry.get("status"), entry.get("id"), entry.get("loraUrl"))
        for style, entries in documents.items()
        for entry in entries
    )


def duplicates(documents: dict[int, list[dict[str, Any]]]) -> list[tuple[int, str]]:
    counted = Counter((style, entry.get("name")) for style, entries in documents.items() for entry in entries)
    return sorted(key for key, count in counted.items() if count > 1)  # type: ignore[misc]


def without(documents: dict[int, list[dict[str, Any]]], *fields: str) -> dict[int, list[dict[str, Any]]]:
    """The documents with some (time-dependent) fields left out, key order kept."""
    return {
        style: [{k: v for k, v in entry.items() if k not in fields} for entry in entries]
        for style, entries in documents.items()
    }


def logged_exceptions(text: str) -> list[str]:
    """The exception lines (`module.Error: message`) that end the tracebacks in a log."""
    lines = text.splitlines()
    return [
        line
        for before, line in itertools.pairwise(lines)
        if before.startswith("  ") and _EXCEPTION_LINE.match(line)
    ]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout|Exit|Interrupt)\b(: |$)")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------- TCP proxy


class TcpProxy:
    """A TCP relay (threads and sockets) from 127.0.0.1:<port> to an upstream address.

    `cut()` closes the listener and every relayed connection, as a database host that went away;
    `restore()` listens again on the same port. Connections made meanwhile are refused.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.port = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True, name="tcp-proxy")
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    continue
                self._sockets.update((client, upstream))
                self.connections += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for each in (source, target):
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)
                each.close()
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(target)

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = list(self._sockets), set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        for each in sockets:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def restore(self) -> None:
        self._listen()

    def close(self) -> None:
        self.cut()
