"""The store answers reads but refuses writes: its disk is full, or it went read-only.

Expected: each write is a 503 that records nothing; `/readyz` does not claim to be ready while
the last write failed that way (503, saying why) and `/healthz` (liveness) stays 200; reads go on;
once a write succeeds again `/readyz` is 200, without a restart; no traceback in the log (the harness checks).

PostgreSQL: a trigger on the event table raises what PostgreSQL raises on a full disk (SQLSTATE
53100) or on a read-only server (25006, a hot standby after a fail-over). SQLite: the database
lives on a small tmpfs that is filled up (needs the right to mount; skipped otherwise). SQLite
going read-only is in tests/integration/test_store_health.py: a file system cannot be remounted
read-only while the server holds the database open for writing.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from loraledger.adapters.store import postgres_connection
from tests.reliability.helpers import event_count
from tests.support.server import LedgerServer, ServerFactory

REFUSING_TRIGGER = """
CREATE FUNCTION {schema}.refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'; END $$;
CREATE TRIGGER refuse_writes BEFORE INSERT ON {schema}.loraledger_events
FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_writes();
"""


def _health(server: LedgerServer) -> tuple[int, str]:
    assert server.client.get("/healthz").status_code == 200  # alive all along: no restart wanted
    response = server.client.get("/readyz")
    return response.status_code, response.text


def _writes_refused_then_allowed(
    server: LedgerServer, refuse: contextlib.AbstractContextManager[str]
) -> None:
    server.started_job(1, "V1")
    assert _health(server)[0] == 200
    document = server.document_bytes(1)
    before = event_count(server.database_url)

    with refuse as why:
        start = server.start_training(1, "V2")
        assert start.status_code == 503, start.text
        status, text = _health(server)
        assert status == 503, text
        assert "last write" in text and why in text.lower(), text
        assert server.document_bytes(1) == document  # reads go on
        annotate = server.client.patch("/styles/1/versions/V1", json={"isGood": True})
        assert annotate.status_code == 503, annotate.text
        assert _health(server)[0] == 503
        assert event_count(server.database_url) == before

    # the store takes writes again: the next write succeeds, and health says so
    assert server.start_training(1, "V2").status_code == 201
    assert _health(server) == (200, '{"status":"ok"}')


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sqlstate", "message", "why"),
    [
        ("53100", "could not extend file: No space left on device", "disk"),
        ("25006", "cannot execute INSERT in a read-only transaction", "read-only"),
    ],
    ids=["disk-full", "read-only"],
)
def test_postgresql_refusing_writes_makes_readyz_503_until_a_write_succeeds(
    make_server: ServerFactory, sqlstate: str, message: str, why: str
) -> None:
    server = make_server(postgres=True)  # a fresh schema, dropped at teardown
    database_url = server.database_url
    schema = database_url.rsplit("schema=", 1)[1]

    @contextlib.contextmanager
    def refusing() -> Iterator[str]:
        with postgres_connection(database_url) as connection:
            connection.execute(REFUSING_TRIGGER.format(schema=schema, message=message, sqlstate=sqlstate))
        try:
            yield why
        finally:
            with postgres_connection(database_url) as connection:
                connection.execute(f"DROP TRIGGER refuse_writes ON {schema}.loraledger_events")

    _writes_refused_then_allowed(server, refusing())


@contextlib.contextmanager
def small_filesystem(path: Path) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs privileges this machine does not give")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def test_sqlite_on_a_full_disk_makes_readyz_503_until_a_write_succeeds(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "disk") as disk:
        server = make_server(database_url=f"sqlite:///{disk / 'ledger.db'}")

        @contextlib.contextmanager
        def full() -> Iterator[str]:
            filler = disk / "filler"
            with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as out:
                while True:
                    out.write(b"\0" * 65536)
            try:
                yield "full"
            finally:
                filler.unlink()

        try:
            _writes_refused_then_allowed(server, full())
        finally:
            server.stop()
