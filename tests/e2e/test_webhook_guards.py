"""The webhook route's guards: its secret, and bodies that are not RunPod job payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.e2e.conftest import WEBHOOK_SECRET, LedgerServer


def _event_count(server: LedgerServer, style_id: int, name: str) -> int:
    return len(server.history(style_id, name))


def test_webhook_with_a_wrong_or_missing_token_is_401_and_records_nothing(server: LedgerServer) -> None:
    job_id = server.started_job(1, "V9")
    body = dict(server.stub.complete(job_id, deliver=False))
    events_before = _event_count(server, 1, "V9")
    document_before = server.document_bytes(1)

    for token in ("wrong", WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1], "", None):
        response = server.post_webhook(body, token=token)
        assert response.status_code == 401, (token, response.text)
        assert "detail" in response.json()
    # The secret is not accepted from a header instead of the query either.
    response = server.client.post(
        server.webhook_url(None), json=body, headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    )
    assert response.status_code == 401

    assert _event_count(server, 1, "V9") == events_before
    assert server.document_bytes(1) == document_before
    assert server.entry(1, "V9")["status"] == "pending"

    # An unknown job with a bad token is not parked either: starting it later finds nothing waiting.
    other = {**body, "id": "00000000-0000-4000-8000-000000000000-e1"}
    assert server.post_webhook(other, token="wrong").status_code == 401

    # The right token still works afterwards.
    assert server.post_webhook(body).status_code == 200
    assert server.entry(1, "V9")["status"] == "completed"


def test_webhooks_are_refused_with_503_when_no_webhook_secret_is_configured(make_server: Any) -> None:
    server: LedgerServer = make_server(unset=("LORALEDGER_WEBHOOK_SECRET",))
    body = {"id": "abc-e1", "status": "COMPLETED", "output": {"status": "success"}}
    for token in (WEBHOOK_SECRET, "", None):
        response = server.post_webhook(body, token=token)
        assert response.status_code == 503, (token, response.text)
        assert "LORALEDGER_WEBHOOK_SECRET" in response.json()["detail"]
    assert server.healthy()


NOT_A_PAYLOAD = {
    "malformed-json": b"{not json",
    "empty-body": b"",
    "truncated": b'{"id": "abc-e1", "status": "COMPLETED"',
    "not-utf8": b"\xff\xfe\x00garbage",
    "array": b"[]",
    "string": b'"COMPLETED"',
    "null": b"null",
    "no-id-no-status": b'{"hello": "world"}',
    "no-status": b'{"id": "abc-e1"}',
    "unknown-status": b'{"id": "abc-e1", "status": "DONE"}',
    "path-in-id": b'{"id": "../../etc/passwd", "status": "COMPLETED"}',
    "numeric-id": b'{"id": 12345, "status": "COMPLETED"}',
    "input-not-object": b'{"id": "abc-e1", "status": "COMPLETED", "input": "x"}',
}


def test_webhook_body_that_is_not_a_runpod_job_payload_is_422(server: LedgerServer) -> None:
    wrong = {}
    for case, raw in NOT_A_PAYLOAD.items():
        response = server.post_webhook(raw)
        if response.status_code != 422 or "detail" not in response.json():
            wrong[case] = (response.status_code, response.text[:300])
    assert wrong == {}
    assert server.healthy()
    assert not any(server.output_dir.rglob("training_versions.json"))


def test_webhook_body_of_5_mb_is_413_and_the_server_stays_healthy(server: LedgerServer) -> None:
    big = json.dumps({"id": "abc-e1", "status": "COMPLETED", "output": {"pad": "x" * 5_000_000}}).encode()
    response = server.post_webhook(big)
    assert response.status_code == 413, response.text
    assert server.healthy()

    # Without a Content-Length (chunked), the limit holds while reading.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    response = server.client.post(
        server.webhook_url(), content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert server.healthy()


DEEPLY_NESTED = {
    "100k-open-brackets": b"[" * 100_000,
    "100k-nested-arrays": b"[" * 100_000 + b"]" * 100_000,
    "50k-nested-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "deep-output": b'{"id": "abc-e1", "status": "COMPLETED", "output": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}",
}


def test_deeply_nested_webhook_body_is_a_4xx_not_a_500_and_the_server_stays_healthy(
    server: LedgerServer,
) -> None:
    answers = {}
    for case, raw in DEEPLY_NESTED.items():
        response = server.post_webhook(raw)
        answers[case] = response.status_code
        assert server.healthy(), case
    assert all(400 <= status < 500 for status in answers.values()), answers
