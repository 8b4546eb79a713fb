"""Every answer of the real server has the shape `/openapi.json` documents for its route and status,
and is written as it always was: the bytes Python's `json.dumps` gives for the dict the route built
(compact, non-ASCII as is, floats as Python spells them), keys in the route's order, and an
imported entry's keys in the entry's own order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.e2e.conftest import LedgerServer, ServerFactory, load_fixture
from tests.reliability.helpers import TcpProxy, logged_exceptions
from tests.support.stores import postgres_url

API_TOKEN = "documented-answers-token-3c5e"
DB_ERRORS = (
    "eventsourcing.persistence.OperationalError",
    "eventsourcing.persistence.InterfaceError",
    "psycopg",
)


class Documented:
    """The server's own OpenAPI document, and a check of an answer against it."""

    def __init__(self, server: LedgerServer) -> None:
        answer = server.client.get("/openapi.json")
        assert answer.status_code == 200, answer.text
        self.openapi: dict[str, Any] = answer.json()
        self.seen: set[tuple[str, int]] = set()

    def schema(self, operation_id: str, status: int) -> dict[str, Any]:
        for methods in self.openapi["paths"].values():
            for operation in methods.values():
                if operation["operationId"] == operation_id:
                    responses = operation["responses"]
                    assert str(status) in responses, (operation_id, status, sorted(responses))
                    schema: dict[str, Any] = responses[str(status)]["content"]["application/json"]["schema"]
                    return schema
        raise AssertionError(f"no operation {operation_id}")

    def check(self, operation_id: str, response: httpx.Response, status: int, *, typed: bool = True) -> Any:
        """The answer has `status`, the documented shape for it, and (a success) json.dumps's bytes.

        `typed=False`: an imported entry whose legacy values do not have the documented types
        (they are kept as they were); only the status, the keys and the bytes are checked.
        """
        assert response.status_code == status, (operation_id, response.status_code, response.text)
        body = response.json()
        schema = {**self.schema(operation_id, status), "components": self.openapi["components"]}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
        if typed:
            assert errors == [], (operation_id, status, errors, body)
        else:
            assert all("is not of type" in error for error in errors), errors
        # A success answer goes through its model: the bytes must be those json.dumps wrote before
        # (errors are written by their handlers, untouched; the projection is the file's own text).
        if 200 <= status < 300 and operation_id not in ("getTrainingVersions", "getActorTrainingVersions"):
            written = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            assert response.content == written.encode(), operation_id
        self.seen.add((operation_id, status))
        return body


def _same_entry(answer: dict[str, Any], in_file: dict[str, Any]) -> None:
    """Same keys, same order, same values as the file's entry."""
    assert list(answer) == list(in_file)
    assert answer == in_file


def test_every_answer_has_its_documented_shape_and_the_bytes_json_dumps_writes(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server(extra_env={"LORALEDGER_API_TOKEN": API_TOKEN})
    docs = Documented(server)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    server.client.headers.update(auth)

    # startTraining: floats as Python writes them (1e-05, not 0.00001), non-ASCII as is.
    start_body = {
        "version_name": "v9",
        "parameters": {"learning_rate": 1e-05, "max_train_steps": 3600, "caption": "encre — ink"},
        "description": "première",
        "fields": {"selectionSetId": "sel-1", "weights": [0.5, 1e-07]},
    }
    answer = server.client.post("/styles/1/trainings", json=start_body)
    started = docs.check("startTraining", answer, 201)
    assert b'"learning_rate":1e-05' in answer.content, answer.content
    _same_entry(started, server.entry(1, "V9"))
    job_id = started["id"]
    conflict = server.client.post("/styles/1/trainings", json={"version_name": "V9"})
    docs.check("startTraining", conflict, 409)
    docs.check("startTraining", server.client.post("/styles/1/trainings", json={"version_name": "9"}), 422)
    docs.check("startTraining", server.client.post("/styles/01/trainings", json={}), 422)
    unauthorised = server.client.post("/styles/1/trainings", json={}, headers={"Authorization": "Bearer no"})
    docs.check("startTraining", unauthorised, 401)
    server.stub.fail_next(4, 500)  # every attempt (LORALEDGER_RUNPOD_ATTEMPTS defaults to 4)
    docs.check("startTraining", server.client.post("/styles/1/trainings", json={"version_name": "V8"}), 502)

    # receiveRunpodWebhook: 202 for an unknown job, 200 applied, 200 repeat, and its errors.
    unknown = load_fixture("runpod/webhook_completed_33c95471-5e61-406c-9287-1b8f8de0bae8-e1.json")
    parked = docs.check("receiveRunpodWebhook", server.post_webhook(unknown), 202)
    assert list(parked) == ["result", "style_id", "version", "decisions"] and parked["result"] == "unmatched"
    server.stub.complete(job_id, deliver=False)
    body = server.stub.webhook_body(job_id)
    applied = docs.check("receiveRunpodWebhook", server.post_webhook(body), 200)
    assert applied["result"] == "applied" and applied["decisions"][0]["candidates"], applied
    repeat = docs.check("receiveRunpodWebhook", server.post_webhook(body), 200)
    assert repeat["result"] == "repeat", repeat
    docs.check("receiveRunpodWebhook", server.post_webhook(body, token="wrong"), 401)
    docs.check("receiveRunpodWebhook", server.post_webhook(b"{not json"), 422)
    docs.check("receiveRunpodWebhook", server.post_webhook(b" " * 2_000_000), 413)

    # getVersionHistory: events with and without a decision, nothing filled in.
    history = docs.check("getVersionHistory", server.client.get("/styles/1/versions/v9/history"), 200)
    assert list(history) == ["style_id", "version", "events"]
    shapes = {tuple(event) for event in history["events"]}
    assert ("type", "at", "data", "decision") in shapes, shapes
    assert list(history["events"][-1]["decision"]) == [
        "source",
        "rule",
        "outcome",
        "input",
        "candidates",
        "notes",
    ]
    docs.check("getVersionHistory", server.client.get("/styles/1/versions/V77/history"), 404)
    docs.check("getVersionHistory", server.client.get("/styles/1/versions/W1/history"), 422)

    # annotateVersion: the answer is the file's entry, extra fields after the known ones.
    annotated = server.client.patch("/styles/1/versions/V9", json={"isGood": True, "score": 4.5e-06})
    _same_entry(docs.check("annotateVersion", annotated, 200), server.entry(1, "V9"))
    docs.check("annotateVersion", server.client.patch("/styles/1/versions/V9", json={"status": "x"}), 422)
    docs.check("annotateVersion", server.client.patch("/styles/1/versions/V70", json={"a": 1}), 404)

    # An imported entry keeps its own key order and its values in every answer, and values of
    # another type than the service writes (a numeric timestamp, null parameters) are answered as
    # they are, not refused.
    legacy = tmp_path / "legacy.json"
    ordered_entry = {
        "selectionSetId": 7,
        "status": "completed",
        "name": "V2",
        "loraUrl": "https://bucket.s3.amazonaws.com/p/style_3_vV2.safetensors",
        "id": "legacy-job-2",
        "parameters": {"b": 1, "a": [2.5e-08]},
    }
    odd_entry = {
        "isGood": False,
        "status": "failed",
        "name": "v4",
        "timestamp": 1760417836311,
        "id": "legacy-job-4",
        "parameters": None,
        "weird": {"b": 1, "a": [2.5e-08]},
    }
    legacy.write_text(json.dumps({"versions": [odd_entry, ordered_entry]}))
    server.stop()
    imported = server.cli("import", str(legacy), "--style", "3")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    server.start()
    server.client.headers.update(auth)
    annotated = server.client.patch("/styles/3/versions/V2", json={"note": "ok"})
    entry = docs.check("annotateVersion", annotated, 200)
    _same_entry(entry, server.entry(3, "V2"))
    assert list(entry) == [*ordered_entry, "note"]
    annotated = server.client.patch("/styles/3/versions/V4", json={"note": "ok"})
    entry = docs.check("annotateVersion", annotated, 200, typed=False)
    _same_entry(entry, server.entry(3, "V4"))
    assert list(entry) == [*odd_entry, "note"] and entry["timestamp"] == 1760417836311
    retried = docs.check(
        "startTraining", server.client.post("/styles/3/trainings", json={"version_name": "V4"}), 201
    )
    _same_entry(retried, server.entry(3, "V4"))
    assert list(retried)[:3] == ["isGood", "status", "name"], retried

    # syncS3: a created entry, an already synced file and a skipped key.
    server.bucket.put(server.s3_key("style_1_vV9"), b"lora")
    server.bucket.put(server.s3_key("style_1_vV10"), b"lora")
    server.bucket.put(server.s3_key("style_1_vV11 (1)"), b"lora")
    report = docs.check("syncS3", server.client.post("/sync/s3", json={"style_id": 1}), 200)
    assert list(report) == [
        "scanned",
        "matched_pending",
        "matched_synced",
        "created",
        "unchanged",
        "skipped",
        "decisions",
        "backups",
    ]
    assert report["created"] == 1 and report["skipped"], report
    docs.check("syncS3", server.client.post("/sync/s3", json={"style_id": 0}), 422)

    # getTrainingVersions: the file's bytes, described by the document schema.
    document = docs.check("getTrainingVersions", server.client.get("/styles/1/training_versions.json"), 200)
    assert [v["name"] for v in document["versions"]] == ["V10", "V9", "V8"]
    docs.check("getTrainingVersions", server.client.get("/styles/7/training_versions.json"), 404)
    docs.check("getTrainingVersions", server.client.get("/styles/0/training_versions.json"), 422)

    # rebuildProjections, reconcile (a job still running, one RunPod forgot), healthz.
    rebuilt = docs.check("rebuildProjections", server.client.post("/projections/rebuild"), 200)
    assert list(rebuilt) == ["styles", "failed", "errors", "backups"] and rebuilt["styles"] == [1, 3]
    running = server.started_job(2, "V1")
    server.stub.set_status(running, "IN_PROGRESS")
    reconciled = docs.check("reconcile", server.client.post("/reconcile", params={"older_than": "0s"}), 200)
    assert list(reconciled) == [
        "checked",
        "applied",
        "still_running",
        "failed_unknown",
        "waiting",
        "errors",
        "results",
    ]
    assert list(reconciled["results"][0]) == ["style_id", "version", "job_id", "result"], reconciled
    docs.check("reconcile", server.client.post("/reconcile", params={"older_than": "soon"}), 422)
    # cancelTraining: the pending attempt failed as cancelled, and its errors; unmatchedWebhooks.
    server.started_job(4, "V1")
    cancelled = docs.check("cancelTraining", server.client.post("/styles/4/versions/V1/cancel"), 200)
    _same_entry(cancelled, server.entry(4, "V1"))
    docs.check("cancelTraining", server.client.post("/styles/4/versions/V1/cancel"), 409)
    docs.check("cancelTraining", server.client.post("/styles/4/versions/V5/cancel"), 404)
    docs.check("cancelTraining", server.client.post("/styles/04/versions/V1/cancel"), 422)
    server.started_job(4, "V2")
    server.stub.fail_next(4, 500)
    docs.check("cancelTraining", server.client.post("/styles/4/versions/V2/cancel"), 502)
    # listSkippedFiles: the files the sync above passed over, and its refusals.
    skipped = docs.check("listSkippedFiles", server.client.get("/sync/skipped"), 200)
    assert skipped["skipped"], skipped
    docs.check("listSkippedFiles", server.client.get("/sync/skipped", params={"style_id": "0"}), 422)
    # The actors' routes: the same commands as the styles', for the second subject kind.
    actor = server.client.post("/actors/6/trainings", json={"version_name": "V2"})
    _same_entry(
        docs.check("startActorTraining", actor, 201),
        server.client.get("/actors/6/training_versions.json").json()["versions"][0],
    )
    actor_again = server.client.post("/actors/6/trainings", json={"version_name": "V2"})
    docs.check("startActorTraining", actor_again, 409)
    docs.check("getActorTrainingVersions", server.client.get("/actors/6/training_versions.json"), 200)
    docs.check("getActorTrainingVersions", server.client.get("/actors/7/training_versions.json"), 404)
    docs.check("getActorVersionHistory", server.client.get("/actors/6/versions/V2/history"), 200)
    docs.check("getActorVersionHistory", server.client.get("/actors/6/versions/V9/history"), 404)
    docs.check(
        "annotateActorVersion", server.client.patch("/actors/6/versions/V2", json={"isGood": True}), 200
    )
    docs.check(
        "annotateActorVersion", server.client.patch("/actors/6/versions/V9", json={"isGood": True}), 404
    )
    docs.check("cancelActorTraining", server.client.post("/actors/6/versions/V2/cancel"), 200)
    docs.check("cancelActorTraining", server.client.post("/actors/6/versions/V2/cancel"), 409)
    docs.check("cancelActorTraining", server.client.post("/actors/6/versions/V9/cancel"), 404)
    unmatched = docs.check("unmatchedWebhooks", server.client.get("/webhooks/unmatched"), 200)
    assert [item["job_id"] for item in unmatched["unmatched"]] == [unknown["id"]]
    json_headers = {"content-type": "application/json"}
    for operation_id, method, path in (
        ("startTraining", "POST", "/styles/1/trainings"),
        ("syncS3", "POST", "/sync/s3"),
        ("annotateVersion", "PATCH", "/styles/1/versions/V9"),
    ):
        unreadable = server.client.request(method, path, content=b"\xff\xfe{", headers=json_headers)
        docs.check(operation_id, unreadable, 422 if operation_id == "annotateVersion" else 400)
        too_large = server.client.request(method, path, content=b" " * 1_000_001, headers=json_headers)
        docs.check(operation_id, too_large, 413)
    for operation_id, method, path in (
        ("syncS3", "POST", "/sync/s3"),
        ("annotateVersion", "PATCH", "/styles/1/versions/V9"),
        ("rebuildProjections", "POST", "/projections/rebuild"),
        ("reconcile", "POST", "/reconcile"),
        ("cancelTraining", "POST", "/styles/4/versions/V2/cancel"),
        ("unmatchedWebhooks", "GET", "/webhooks/unmatched"),
    ):
        refused = server.client.request(method, path, json={}, headers={"Authorization": "Basic x"})
        docs.check(operation_id, refused, 401)
    health = server.client.get("/healthz")
    docs.check("healthz", health, 200)
    assert health.content == b'{"status":"ok"}'
    ready = server.client.get("/readyz")
    docs.check("readyz", ready, 200)
    assert ready.content == b'{"status":"ok"}'

    documented = {
        (operation["operationId"], int(status))
        for methods in docs.openapi["paths"].values()
        for operation in methods.values()
        for status in operation["responses"]
    }
    # The actors' routes answer their refusals (400, 401, 408, 413, 422, 502, 503) from the same
    # dependencies and handlers as the styles' routes, which provoke each above.
    actor_answers_the_style_routes_provoke = {
        (operation_id, status)
        for operation_id in (
            "startActorTraining",
            "getActorTrainingVersions",
            "getActorVersionHistory",
            "annotateActorVersion",
            "cancelActorTraining",
        )
        for status in (400, 401, 408, 413, 422, 502, 503)
    }
    # What this test does not provoke: the store away (test below), a missing setting, S3
    # refusing, and a body that takes longer than its read deadline (408, tests of api/limits.py).
    slow_bodies = ("startTraining", "receiveRunpodWebhook", "syncS3", "annotateVersion")
    assert (
        documented - docs.seen
        <= {(operation_id, 408) for operation_id in slow_bodies}
        | {
            (operation_id, 503)
            for operation_id in (
                "startTraining",
                "receiveRunpodWebhook",
                "syncS3",
                "getTrainingVersions",
                "getVersionHistory",
                "annotateVersion",
                "rebuildProjections",
                "reconcile",
                "cancelTraining",
                "unmatchedWebhooks",
                "listSkippedFiles",
                "readyz",
            )
        }
        | {("syncS3", 502)}
        | actor_answers_the_style_routes_provoke
    ), sorted(documented - docs.seen)


def test_a_webhook_without_a_secret_configured_answers_the_documented_503(make_server: ServerFactory) -> None:
    server = make_server(unset=("LORALEDGER_WEBHOOK_SECRET",))
    docs = Documented(server)
    body = load_fixture("runpod/webhook_completed_33c95471-5e61-406c-9287-1b8f8de0bae8-e1.json")
    docs.check("receiveRunpodWebhook", server.post_webhook(body), 503)


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    base = postgres_url()
    if base is None:
        pytest.skip("LORALEDGER_TEST_POSTGRES_URL is not set")
    parts = urlsplit(base)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield proxy
    proxy.close()


@pytest.mark.postgres
def test_with_the_store_away_health_and_routes_answer_the_documented_503(
    db_proxy: TcpProxy, make_server: ServerFactory
) -> None:
    direct = make_server(postgres=True, start=False)  # owns the schema (dropped at teardown)
    parts = urlsplit(direct.database_url)
    via_proxy = parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{db_proxy.port}").geturl()
    server = make_server(database_url=via_proxy)
    docs = Documented(server)
    server.started_job(1, "V1")
    db_proxy.cut()
    try:
        docs.check("healthz", server.client.get("/healthz"), 200)  # alive: no restart wanted
        ready = server.client.get("/readyz")
        docs.check("readyz", ready, 503)
        assert ready.content == b'{"status":"unavailable","detail":"the event store does not answer"}'
        docs.check("getTrainingVersions", server.client.get("/styles/1/training_versions.json"), 503)
    finally:
        db_proxy.restore()
    # The outage may log tracebacks: they must all end in a database error.
    unexpected = [line for line in logged_exceptions(server.stderr_text()) if not line.startswith(DB_ERRORS)]
    assert unexpected == [], unexpected
    server.tracebacks_reported = True
