"""`/openapi.json` describes every route: its answer, its error statuses, its security and a
readable operation id (the real answers are checked against it in tests/e2e/test_documented_answers.py)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from loraledger.api.http import create_app
from loraledger.api.settings import Settings

with warnings.catch_warnings():  # starlette's testclient warns that httpx is deprecated there
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# operation id -> (method, path, 2xx statuses, error statuses, security scheme)
ROUTES: dict[str, tuple[str, str, set[int], set[int], str | None]] = {
    "startTraining": (
        "post",
        "/styles/{style_id}/trainings",
        {201},
        {400, 401, 408, 409, 413, 422, 502, 503},
        "apiToken",
    ),
    "receiveRunpodWebhook": (
        "post",
        "/webhooks/runpod",
        {200, 202},
        {401, 408, 413, 422, 503},
        "webhookToken",
    ),
    "syncS3": ("post", "/sync/s3", {200}, {400, 401, 408, 413, 422, 502, 503}, "apiToken"),
    "listSkippedFiles": ("get", "/sync/skipped", {200}, {422, 503}, None),
    "getTrainingVersions": ("get", "/styles/{style_id}/training_versions.json", {200}, {404, 422, 503}, None),
    "getVersionHistory": ("get", "/styles/{style_id}/versions/{name}/history", {200}, {404, 422, 503}, None),
    "annotateVersion": (
        "patch",
        "/styles/{style_id}/versions/{name}",
        {200},
        {401, 404, 408, 413, 422, 503},
        "apiToken",
    ),
    "startActorTraining": (
        "post",
        "/actors/{actor_id}/trainings",
        {201},
        {400, 401, 408, 409, 413, 422, 502, 503},
        "apiToken",
    ),
    "getActorTrainingVersions": (
        "get",
        "/actors/{actor_id}/training_versions.json",
        {200},
        {404, 422, 503},
        None,
    ),
    "getActorVersionHistory": (
        "get",
        "/actors/{actor_id}/versions/{name}/history",
        {200},
        {404, 422, 503},
        None,
    ),
    "cancelActorTraining": (
        "post",
        "/actors/{actor_id}/versions/{name}/cancel",
        {200},
        {401, 404, 409, 422, 502, 503},
        "apiToken",
    ),
    "annotateActorVersion": (
        "patch",
        "/actors/{actor_id}/versions/{name}",
        {200},
        {401, 404, 408, 413, 422, 503},
        "apiToken",
    ),
    "rebuildProjections": ("post", "/projections/rebuild", {200}, {401, 503}, "apiToken"),
    "reconcile": ("post", "/reconcile", {200}, {401, 422, 503}, "apiToken"),
    "cancelTraining": (
        "post",
        "/styles/{style_id}/versions/{name}/cancel",
        {200},
        {401, 404, 409, 422, 502, 503},
        "apiToken",
    ),
    "unmatchedWebhooks": ("get", "/webhooks/unmatched", {200}, {401, 503}, "apiToken"),
    "healthz": ("get", "/healthz", {200}, set(), None),
    "readyz": ("get", "/readyz", {200}, {503}, None),
}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(database_url=f"sqlite:///{folder / 'ledger.db'}", output_dir=str(folder)))
    answer = TestClient(app).get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = openapi["components"]["schemas"][name]
    return schema


def _operations(openapi: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        operation["operationId"]: (method, path, operation)
        for path, methods in openapi["paths"].items()
        for method, operation in methods.items()
    }


def _body_schema(openapi: dict[str, Any], operation: dict[str, Any], status: int) -> dict[str, Any]:
    return _resolve(openapi, operation["responses"][str(status)]["content"]["application/json"]["schema"])


def test_every_route_has_its_readable_operation_id(openapi: dict[str, Any]) -> None:
    found = {op_id: (method, path) for op_id, (method, path, _) in _operations(openapi).items()}
    assert found == {op_id: (method, path) for op_id, (method, path, *_) in ROUTES.items()}


def test_every_route_documents_its_success_answer_with_its_properties(openapi: dict[str, Any]) -> None:
    missing = {}
    for op_id, (_, _, operation) in _operations(openapi).items():
        successes = {int(status) for status in operation["responses"] if status.startswith("2")}
        if successes != ROUTES[op_id][2]:
            missing[op_id] = f"2xx statuses {sorted(successes)}"
            continue
        for status in successes:
            schema = _body_schema(openapi, operation, status)
            if schema.get("type") != "object" or not schema.get("properties"):
                missing[op_id] = f"{status}: {schema}"
    assert missing == {}


def test_every_route_documents_the_errors_it_can_answer(openapi: dict[str, Any]) -> None:
    undocumented = {}
    for op_id, (_, _, operation) in _operations(openapi).items():
        errors = {int(status) for status in operation["responses"] if status[0] in "45"}
        if not ROUTES[op_id][3] <= errors:
            undocumented[op_id] = sorted(ROUTES[op_id][3] - errors)
        for status in errors:
            schema = _body_schema(openapi, operation, status)
            assert "detail" in schema["properties"], (op_id, status, schema)
    assert undocumented == {}


def test_error_bodies_are_a_detail_sentence_or_for_422_the_list_of_problems(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    assert schemas["ErrorBody"]["required"] == ["detail"]
    detail = schemas["UnprocessableBody"]["properties"]["detail"]["anyOf"]
    assert {"type": "string"} in detail
    assert {"type": "array", "items": {"$ref": "#/components/schemas/ValidationIssue"}} in detail
    operations = _operations(openapi)
    for op_id, (*_, errors, _) in ROUTES.items():
        operation = operations[op_id][2]
        for status in errors - {422}:
            expected = "HealthAnswer" if op_id == "readyz" else "ErrorBody"
            ref = operation["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{expected}", (op_id, status)
        if 422 in errors:
            ref = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/UnprocessableBody", op_id


def test_the_bearer_token_and_the_webhook_token_are_declared_where_they_are_checked(
    openapi: dict[str, Any],
) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["apiToken"]["type"] == "http" and schemes["apiToken"]["scheme"] == "bearer"
    assert "LORALEDGER_API_TOKEN" in schemes["apiToken"]["description"]
    webhook = schemes["webhookToken"]
    assert (webhook["type"], webhook["in"], webhook["name"]) == ("apiKey", "query", "token")
    assert "LORALEDGER_WEBHOOK_SECRET" in webhook["description"]
    for op_id, (_, _, operation) in _operations(openapi).items():
        scheme = ROUTES[op_id][4]
        assert operation.get("security") == ([{scheme: []}] if scheme else None), op_id
        assert ("401" in operation["responses"]) == (scheme is not None), op_id


def test_the_version_entry_keeps_fields_the_service_does_not_own(openapi: dict[str, Any]) -> None:
    entry = openapi["components"]["schemas"]["VersionEntry"]
    assert entry["additionalProperties"] is True
    assert entry["required"] == ["name", "status"]
    assert entry["properties"]["status"]["enum"] == ["pending", "completed", "failed"]
    decision = openapi["components"]["schemas"]["Decision"]
    assert set(decision["required"]) == {"source", "rule", "outcome", "input", "candidates", "notes"}
    assert "default" not in str(openapi["components"]["schemas"]["HistoryEvent"])
    closed = {
        "SyncReport",
        "ReconcileReport",
        "RebuildAnswer",
        "WebhookAnswer",
        "VersionHistory",
        "HistoryEvent",
    }
    assert {
        name for name in closed if openapi["components"]["schemas"][name]["additionalProperties"]
    } == set()
