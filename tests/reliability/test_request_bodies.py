"""Request bodies from hostile or broken clients: too large, too slow, or cut off half-way.

Every route that takes a body answers 413 to one over the limit (declared or streamed), 408 to
one that does not arrive within the read deadline, and says nothing (and logs no traceback)
when the client hangs up in the middle of it. Nothing is recorded in any of these cases.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.reliability.helpers import event_count
from tests.support.server import WEBHOOK_SECRET, LedgerServer, ServerFactory

LIMIT = 4096
READ_TIMEOUT = 1.0
BODY_ROUTES = [
    ("POST", "/styles/1/trainings"),
    ("POST", "/sync/s3"),
    ("PATCH", "/styles/1/versions/V1"),
    ("POST", "/projections/rebuild"),
    ("POST", "/reconcile"),
    ("POST", f"/webhooks/runpod?token={WEBHOOK_SECRET}"),
]
JSON = {"content-type": "application/json"}
ROUTE_IDS = [f"{method} {path.split('?')[0]}" for method, path in BODY_ROUTES]


@pytest.fixture
def limited(make_server: ServerFactory) -> LedgerServer:
    """A server with a small body limit and a short read deadline, and one version (V1)."""
    server = make_server(
        extra_env={
            "LORALEDGER_MAX_BODY_BYTES": str(LIMIT),
            "LORALEDGER_WEBHOOK_MAX_BYTES": str(LIMIT),
            "LORALEDGER_BODY_READ_TIMEOUT": str(READ_TIMEOUT),
        }
    )
    server.started_job(1, "V1")
    return server


def raw_request(server: LedgerServer, method: str, path: str, headers: dict[str, str]) -> socket.socket:
    """A connection that has sent the request line and headers, and no body yet."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    return sock


def status_of(sock: socket.socket) -> int | None:
    """The status code of the answer on the connection, None when it closed without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    if not data:
        return None
    return int(data.split(b" ", 2)[1])


def chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    body = b'{"description": "' + b"x" * total + b'"}'
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_declared_larger_than_the_limit_is_a_413_before_it_is_read(limited: LedgerServer) -> None:
    before = event_count(limited.database_url)
    answers = {}
    for method, path in BODY_ROUTES:
        sock = raw_request(limited, method, path, {"Content-Length": str(LIMIT + 1)})
        sock.sendall(b"{")  # the rest never comes: the answer must not wait for it
        answers[f"{method} {path}"] = status_of(sock)

    assert set(answers.values()) == {413}, answers
    assert event_count(limited.database_url) == before
    assert limited.healthy()


def test_a_streamed_body_growing_past_the_limit_is_a_413(limited: LedgerServer) -> None:
    before = event_count(limited.database_url)
    answers = {}
    for method, path in BODY_ROUTES:
        response = limited.client.request(method, path, content=chunks(LIMIT * 4), headers=JSON)  # chunked
        answers[f"{method} {path}"] = (response.status_code, str(LIMIT) in response.json()["detail"])

    assert set(answers.values()) == {(413, True)}, answers
    assert event_count(limited.database_url) == before
    assert limited.healthy()


def test_a_body_within_the_limit_is_still_taken(limited: LedgerServer) -> None:
    body = b"".join(chunks(LIMIT - 100))
    response = limited.client.post("/styles/1/trainings", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    response = limited.client.patch("/styles/1/versions/V1", json={"isGood": True})
    assert response.status_code == 200, response.text
    assert limited.client.post("/sync/s3", json={"style_id": 1}).status_code == 200


def test_a_body_that_stalls_is_a_408_after_the_read_deadline(limited: LedgerServer) -> None:
    before = event_count(limited.database_url)
    answers = {}
    for method, path in BODY_ROUTES:
        sock = raw_request(limited, method, path, {"Content-Length": "100"})
        sock.sendall(b'{"descr')
        started = time.monotonic()
        status = status_of(sock)
        answers[f"{method} {path}"] = (
            status,
            READ_TIMEOUT * 0.8 <= time.monotonic() - started < READ_TIMEOUT + 3,
        )

    assert set(answers.values()) == {(408, True)}, answers
    assert event_count(limited.database_url) == before
    assert limited.healthy()


def test_a_body_trickling_in_a_byte_at_a_time_is_cut_off_at_the_deadline(limited: LedgerServer) -> None:
    sock = raw_request(limited, "POST", "/styles/1/trainings", {"Content-Length": "100"})
    started = time.monotonic()
    try:
        for _ in range(int(READ_TIMEOUT * 10) + 20):  # well past the deadline, a byte each 0.1 s
            sock.sendall(b" ")
            time.sleep(0.1)
    except OSError:
        pass  # the server answered and closed
    assert status_of(sock) == 408
    assert time.monotonic() - started < READ_TIMEOUT + 4


def test_a_client_hanging_up_in_the_middle_of_its_body_leaves_no_traceback_and_no_trace(
    limited: LedgerServer,
) -> None:
    before = event_count(limited.database_url)
    for method, path in BODY_ROUTES:
        for _ in range(3):
            sock = raw_request(limited, method, path, {"Content-Length": "1000"})
            sock.sendall(b'{"description": "cut')
            time.sleep(0.1)
            sock.close()
    time.sleep(0.3)

    assert limited.healthy()
    assert event_count(limited.database_url) == before
    assert limited.tracebacks() is None, limited.stderr_text()[-3000:]
