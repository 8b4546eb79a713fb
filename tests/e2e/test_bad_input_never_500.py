"""CONTRACT §4: "No route ever answers 500 to bad input" - JSON that parses but cannot be stored.

Python's `json` (FastAPI's body parser) accepts `NaN`, `Infinity` and `1e400` (-> inf) and lone
UTF-16 surrogates (`"\\ud800"`); the event store and the projection cannot write either. Each case
is sent on a fresh connection (the server drops a connection after an unhandled error).
"""

from __future__ import annotations

import json

import httpx

from tests.e2e.conftest import HTTP_TIMEOUT, LedgerServer

NON_FINITE = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")


def _send(server: LedgerServer, method: str, path: str, raw: bytes) -> int | str:
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        try:
            response = client.request(method, path, content=raw, headers={"content-type": "application/json"})
        except httpx.HTTPError as error:
            return repr(error)
    return response.status_code


def _not_4xx(answers: dict[str, int | str]) -> dict[str, int | str]:
    return {
        case: status
        for case, status in answers.items()
        if not (isinstance(status, int) and 400 <= status < 500)
    }


def _pending_without_job(server: LedgerServer, style_id: int) -> list[dict[str, object]]:
    content = server.document_bytes(style_id)
    versions = json.loads(content)["versions"] if content else []
    return [v for v in versions if v["status"] == "pending" and v["id"] not in server.stub.jobs]


def test_training_start_with_a_non_finite_number_in_parameters_or_fields_is_422_not_500(
    server: LedgerServer,
) -> None:
    answers: dict[str, int | str] = {}
    number = 10
    for literal in NON_FINITE:
        for where in ("parameters", "fields"):
            number += 1
            raw = f'{{"version_name": "V{number}", "{where}": {{"x": {literal}}}}}'.encode()
            answers[f"{where}={literal}"] = _send(server, "POST", "/styles/1/trainings", raw)
    assert server.healthy()
    assert _pending_without_job(server, 1) == []
    assert _not_4xx(answers) == {}


def test_training_start_with_input_that_cannot_be_sent_is_4xx_and_leaves_no_pending_version(
    server: LedgerServer,
) -> None:
    answers: dict[str, int | str] = {}
    for number, literal in enumerate((*NON_FINITE, '"\\ud800"'), start=1):
        raw = f'{{"version_name": "V{number}", "input": {{"extra": {literal}}}}}'.encode()
        answers[literal] = _send(server, "POST", "/styles/1/trainings", raw)
    assert server.healthy()
    assert server.stub.jobs == {}
    stuck = _pending_without_job(server, 1)
    assert stuck == [], f"left pending with no RunPod job: {[v['name'] for v in stuck]}; answers {answers}"
    assert _not_4xx(answers) == {}


def test_patch_with_a_non_finite_number_is_422_not_500(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    before = server.document_bytes(1)
    answers = {
        literal: _send(server, "PATCH", "/styles/1/versions/V9", f'{{"score": {literal}}}'.encode())
        for literal in NON_FINITE
    }
    assert server.healthy()
    assert server.document_bytes(1) == before
    assert _not_4xx(answers) == {}


def test_webhook_with_a_non_finite_number_is_not_a_500_and_the_real_webhook_still_applies(
    server: LedgerServer,
) -> None:
    job_id = server.started_job(1, "V9")
    body = dict(server.stub.complete(job_id, deliver=False))
    answers: dict[str, int | str] = {}
    for literal in NON_FINITE:
        for field in ("executionTime", "delayTime"):
            raw = json.dumps({**body, field: "__X__"}).replace('"__X__"', literal).encode()
            answers[f"{field}={literal}"] = _send(server, "POST", server.webhook_url(), raw)
    assert server.healthy()
    bad = {case: status for case, status in answers.items() if status not in (200, 422)}
    # The genuine delivery is applied (or was already, by one of the above).
    assert server.stub.deliver(job_id).status_codes == [200]
    assert server.entry(1, "V9")["status"] == "completed"
    assert bad == {}


def test_lone_surrogates_in_request_bodies_are_422_not_500(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    surrogate = '"\\ud800"'
    start = "/styles/1/trainings"
    cases = {
        "start description": ("POST", start, f'{{"version_name": "V3", "description": {surrogate}}}'),
        "start parameters": ("POST", start, f'{{"version_name": "V4", "parameters": {{"k": {surrogate}}}}}'),
        "start fields": ("POST", start, f'{{"version_name": "V5", "fields": {{"k": {surrogate}}}}}'),
        "start version_name": ("POST", start, f'{{"version_name": {surrogate}}}'),
        "patch value": ("PATCH", "/styles/1/versions/V9", f'{{"note": {surrogate}}}'),
        "patch key": ("PATCH", "/styles/1/versions/V9", f"{{{surrogate}: 1}}"),
        "sync style_id": ("POST", "/sync/s3", f'{{"style_id": {surrogate}}}'),
    }
    answers = {case: _send(server, method, path, raw.encode()) for case, (method, path, raw) in cases.items()}
    assert server.healthy()
    assert _pending_without_job(server, 1) == []
    assert _not_4xx(answers) == {}
