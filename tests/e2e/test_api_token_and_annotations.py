"""The API bearer token on mutating routes, and fields the service does not own (PATCH)."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import LedgerServer

API_TOKEN = "e2e-api-token-91b7"


def test_with_an_api_token_mutating_routes_need_the_bearer_and_the_webhook_does_not(
    make_server: Any,
) -> None:
    server: LedgerServer = make_server(extra_env={"LORALEDGER_API_TOKEN": API_TOKEN})
    mutating: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/styles/1/trainings", {"version_name": "V9"}),
        ("POST", "/sync/s3", None),
        ("PATCH", "/styles/1/versions/V9", {"isGood": True}),
        ("POST", "/projections/rebuild", None),
        ("POST", "/reconcile?older_than=0s", None),
    ]
    wrong_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {API_TOKEN}x"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": API_TOKEN},
        {"Authorization": "Bearer"},
        {"X-Api-Token": API_TOKEN},
    ]
    answers = {}
    for method, path, body in mutating:
        for headers in wrong_headers:
            response = server.client.request(method, path, json=body, headers=headers)
            if response.status_code != 401 or "detail" not in response.json():
                answers[(method, path, str(headers))] = response.status_code
    assert answers == {}
    assert server.stub.jobs == {}
    assert server.client.get("/styles/1/training_versions.json").status_code == 404

    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    started = server.client.post("/styles/1/trainings", json={"version_name": "V9"}, headers=auth)
    assert started.status_code == 201, started.text
    job_id = started.json()["id"]

    # The webhook has its own secret and needs no bearer (RunPod cannot send one).
    assert server.stub.complete(job_id).status_codes == [200]
    assert server.entry(1, "V9")["status"] == "completed"

    for method, path, body in mutating[1:]:
        response = server.client.request(method, path, json=body, headers=auth)
        assert response.status_code == 200, (method, path, response.text)
    assert server.entry(1, "V9")["isGood"] is True

    # Reading needs no token.
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/styles/1/training_versions.json").status_code == 200
    assert server.client.get("/styles/1/versions/V9/history").status_code == 200


def test_patch_sets_and_clears_fields_the_service_does_not_own_and_refuses_owned_ones(
    server: LedgerServer,
) -> None:
    unknown = server.client.patch("/styles/1/versions/V9", json={"isGood": True})
    assert unknown.status_code == 404, unknown.text  # nothing to annotate yet, and nothing invented
    assert server.client.get("/styles/1/training_versions.json").status_code == 404

    job_id = server.started_job(1, "V9", parameters={"learning_rate": 0.0003}, description="first")

    response = server.client.patch("/styles/1/versions/V9", json={"isGood": True})
    assert response.status_code == 200, response.text
    assert response.json()["isGood"] is True
    content = server.document_bytes(1)
    assert content is not None
    assert json.loads(content)["versions"][0]["isGood"] is True
    assert server.wait_file(1, content) == content
    assert json.loads(server.file(1).read_bytes())["versions"][0]["isGood"] is True

    # Owned fields are a 422, and nothing changes.
    for owned in (
        {"status": "x"},
        {"status": "completed"},
        {"loraUrl": "https://evil.example/x.safetensors"},
        {"id": "other"},
        {"name": "V10"},
        {"isGood": False, "status": "failed"},
    ):
        refused = server.client.patch("/styles/1/versions/V9", json=owned)
        assert refused.status_code == 422, (owned, refused.text)
        assert server.document_bytes(1) == content, owned

    # Not an object: 422 as well.
    for raw in (b"[]", b"true", b"{bad"):
        refused = server.client.patch(
            "/styles/1/versions/V9", content=raw, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 422, (raw, refused.text)

    # Annotations survive the webhook and an S3 sync.
    assert server.stub.complete(job_id).status_codes == [200]
    server.bucket.put(server.s3_key("style_1_vV9"), b"lora")
    server.sync()
    entry = server.entry(1, "V9")
    assert entry["isGood"] is True and entry["status"] == "completed"

    # null clears the field.
    cleared = server.client.patch("/styles/1/versions/V9", json={"isGood": None, "selectionSetId": "s-1"})
    assert cleared.status_code == 200, cleared.text
    entry = server.entry(1, "V9")
    assert "isGood" not in entry, entry
    assert entry["selectionSetId"] == "s-1"
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content
    assert "isGood" not in server.file(1).read_text()
    assert [e["type"] for e in server.history(1, "V9")].count("Annotated") == 2
