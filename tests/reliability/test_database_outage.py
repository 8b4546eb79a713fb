"""The database goes away and comes back (PostgreSQL behind a TCP proxy that is cut, then
restored; the real PostgreSQL server is never stopped).

Expected: `/readyz` answers 503 within a few seconds while `/healthz` (liveness) stays 200; a
webhook during the outage gets a 5xx (so RunPod delivers it again) and nothing is half-recorded;
once the database is back, `/readyz` is 200 and webhooks are applied, without restarting the
process; the database password never shows in a log line or an answer.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from tests.reliability.helpers import TcpProxy, figures, logged_exceptions, wait_for
from tests.support.server import LedgerServer, ServerFactory
from tests.support.stores import postgres_url

DB_PASSWORD = "Db-Pa55word-never-logged-91f3"
# What a traceback in the log may be about while the database is away.
DB_ERRORS = (
    "eventsourcing.persistence.OperationalError",
    "eventsourcing.persistence.InterfaceError",
    "psycopg",
)
HEALTH_DEADLINE = 5.0  # "unhealthy within a few seconds"
WEBHOOK_DEADLINE = 15.0  # an answer (a 5xx) before a webhook sender gives up
OUTAGE_PATIENCE = 65.0  # how long the recovery test waits for an answer during the outage


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    base = postgres_url()
    if base is None:
        pytest.skip("LORALEDGER_TEST_POSTGRES_URL is not set")
    parts = urlsplit(base)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield proxy
    proxy.close()


def _via(proxy: TcpProxy, database_url: str) -> str:
    """The same database URL, through the proxy, with a password (trust auth ignores it)."""
    parts = urlsplit(database_url)
    user = parts.username or "postgres"
    return parts._replace(netloc=f"{user}:{DB_PASSWORD}@127.0.0.1:{proxy.port}").geturl()


def _prepared(db_proxy: TcpProxy, make_server: ServerFactory) -> tuple[LedgerServer, dict[str, str]]:
    """A server on PostgreSQL through the proxy: V1 completed, V2 and V3 started (bodies ready)."""
    direct = make_server(postgres=True, start=False)  # owns the schema (dropped at teardown)
    server = make_server(database_url=_via(db_proxy, direct.database_url))
    jobs = {name: server.started_job(1, name) for name in ("V1", "V2", "V3")}
    assert server.stub.complete(jobs["V1"]).status_codes == [200]
    bodies = {
        name: json.dumps(dict(server.stub.complete(jobs[name], deliver=False))) for name in ("V2", "V3")
    }
    return server, bodies


def _db_tracebacks_only(server: LedgerServer) -> None:
    """The log may show the outage with tracebacks: they must all end in a database error."""
    unexpected = [line for line in logged_exceptions(server.stderr_text()) if not line.startswith(DB_ERRORS)]
    assert unexpected == [], unexpected
    server.tracebacks_reported = True


@pytest.mark.postgres
def test_database_away_readyz_says_503_within_seconds_and_healthz_stays_200(
    db_proxy: TcpProxy, make_server: ServerFactory
) -> None:
    server, bodies = _prepared(db_proxy, make_server)
    db_proxy.cut()
    cut_at = time.monotonic()
    try:
        status = _health(server.base_url, timeout=HEALTH_DEADLINE)
        took = time.monotonic() - cut_at
        assert status == 503 and took <= HEALTH_DEADLINE, (status, took)
        assert httpx.get(f"{server.base_url}/healthz", timeout=HEALTH_DEADLINE).status_code == 200
        # and a webhook is answered (with a 5xx, so RunPod delivers it again) within RunPod's patience
        began = time.monotonic()
        answer, _ = _post(server.webhook_url(), bodies["V2"], timeout=WEBHOOK_DEADLINE)
        assert isinstance(answer, int) and answer >= 500, answer
        assert time.monotonic() - began <= WEBHOOK_DEADLINE
    finally:
        db_proxy.restore()
        _db_tracebacks_only(server)


@pytest.mark.slow
@pytest.mark.postgres
def test_database_away_then_back_the_service_recovers_without_restart(
    db_proxy: TcpProxy, make_server: ServerFactory
) -> None:
    server, bodies = _prepared(db_proxy, make_server)
    pid = server.process.pid if server.process else None

    # The database goes away: health, a webhook, a start and a read are asked at the same moment.
    # A caller that gives up (OUTAGE_PATIENCE) counts as "not answered": RunPod delivers again.
    db_proxy.cut()
    cut_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        health = pool.submit(_health, server.base_url, 120)
        webhook = pool.submit(_post, server.webhook_url(), bodies["V2"], OUTAGE_PATIENCE)
        start = pool.submit(
            _post,
            f"{server.base_url}/styles/1/trainings",
            json.dumps({"version_name": "V4"}),
            OUTAGE_PATIENCE,
        )
        read = pool.submit(_get, f"{server.base_url}/styles/1/training_versions.json", OUTAGE_PATIENCE)
        health_status = health.result()
        unhealthy_after = time.monotonic() - cut_at
        (during, during_text), (start_status, start_text) = webhook.result(), start.result()
        read_status = read.result()
    outage_answers_after = time.monotonic() - cut_at
    assert health_status == 503, health_status

    # It comes back.
    db_proxy.restore()
    back_at = time.monotonic()
    assert wait_for(lambda: _health(server.base_url, 60) == 200, 90, 0.2), "readyz never recovered"
    healthy_after = time.monotonic() - back_at
    assert server.running and server.process is not None and server.process.pid == pid, "it was restarted"

    # RunPod delivers again; a new webhook is applied too; the files follow.
    redelivered, _ = _post(server.webhook_url(), bodies["V2"])
    fresh, _ = _post(server.webhook_url(), bodies["V3"])
    assert (redelivered, fresh) == (200, 200)
    for name in ("V1", "V2", "V3"):
        entry = server.entry(1, name)
        assert entry["status"] == "completed", entry
        types = Counter(event["type"] for event in server.history(1, name))
        assert types["TrainingCompleted"] == 1, types
    assert [v["name"] for v in server.document(1)["versions"]] in (
        ["V3", "V2", "V1"],
        ["V4", "V3", "V2", "V1"],
    )
    document = server.document_bytes(1)
    assert document is not None
    assert wait_for(lambda: server.file(1).read_bytes() == document, 5), "the file did not catch up"

    # Nothing lost silently: no 2xx/4xx during the outage (a 5xx or no answer: RunPod retries).
    assert during == "ReadTimeout" or (isinstance(during, int) and during >= 500), during
    assert start_status == "ReadTimeout" or (isinstance(start_status, int) and start_status >= 500)
    logs = server.stderr_text() + server.stdout_text()
    assert DB_PASSWORD not in logs
    assert DB_PASSWORD not in during_text + start_text
    _db_tracebacks_only(server)
    figures(
        "database away and back (PostgreSQL via TCP proxy)",
        readyz_during_outage=f"{health_status} after {unhealthy_after:.1f} s",
        webhook_during_outage=during,
        start_during_outage=start_status,
        outage_answers_within_s=f"{outage_answers_after:.1f}",
        read_during_outage=read_status,
        readyz_200_after_restore_s=f"{healthy_after:.1f}",
        redelivered_after=redelivered,
        restarts=0,
        unhandled_500_logged=server.stderr_text().count("Exception in ASGI application"),
        password_leaks=0,
    )


def _health(base_url: str, timeout: float) -> int | str:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=timeout).status_code
    except httpx.HTTPError as error:
        return type(error).__name__


def _post(url: str, body: str, timeout: float = 30) -> tuple[int | str, str]:
    try:
        response = httpx.post(
            url, content=body, headers={"content-type": "application/json"}, timeout=timeout
        )
    except httpx.HTTPError as error:
        return type(error).__name__, ""
    return response.status_code, response.text


def _get(url: str, timeout: float = 30) -> int | str:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError as error:
        return type(error).__name__
