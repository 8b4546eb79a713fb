"""Webhooks for jobs the service does not know: parked (202), never a new version, applied later."""

from __future__ import annotations

import copy
import json
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

import tests.support.runpod_stub as runpod_stub_module
from tests.e2e.conftest import FIXTURES, LedgerServer, load_fixture

PARKED_RULE = "parked-webhook:applied-on-start"


def webhook_for(job_id: str, model_name: str) -> dict[str, Any]:
    """A real completed-training webhook body, re-addressed to `job_id` and `model_name`."""
    body = load_fixture("runpod/webhook_completed_33c95471-5e61-406c-9287-1b8f8de0bae8-e1.json")
    body = copy.deepcopy(body)
    old_model = body["input"]["training_config"]["model_name"]
    body["id"] = job_id
    body["input"]["training_config"]["model_name"] = model_name
    text = json.dumps(body["output"]).replace(old_model, model_name)
    body["output"] = json.loads(text)
    return body


def rules_of(history: list[dict[str, Any]]) -> list[str]:
    return [event["decision"]["rule"] for event in history if event.get("decision")]


def test_webhooks_of_unrelated_jobs_are_parked_with_202_and_invent_no_version(server: LedgerServer) -> None:
    fixtures = sorted((FIXTURES / "runpod").glob("other_job_completed_*.json"))
    assert len(fixtures) >= 2
    for path in fixtures:
        body = json.loads(path.read_text())
        for _ in range(2):  # a repeat is as harmless as the first
            response = server.post_webhook(body)
            assert response.status_code == 202, (path.name, response.text)
            assert response.json()["result"] == "unmatched"

    for style_id in (1, 3, 4, 82, 99):
        assert server.client.get(f"/styles/{style_id}/training_versions.json").status_code == 404
    assert not any(server.output_dir.rglob("training_versions.json"))
    assert server.healthy()


def test_parked_webhook_is_applied_when_training_start_returns_that_job_id(
    server: LedgerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_uuid = uuid.uuid4()
    job_id = f"{job_uuid}-e1"
    response = server.post_webhook(webhook_for(job_id, "style_3_vV1"))
    assert response.status_code == 202, response.text
    assert server.client.get("/styles/3/training_versions.json").status_code == 404
    assert server.client.get("/styles/3/versions/V1/history").status_code == 404

    # The stub hands out `<uuid4>-e1` ids: make the next one the parked job's id.
    monkeypatch.setattr(runpod_stub_module, "uuid", types.SimpleNamespace(uuid4=lambda: job_uuid))
    started = server.start_training(3, "V1", parameters={"learning_rate": 0.0002})
    assert started.status_code == 201, started.text
    assert started.json()["id"] == job_id

    entry = server.entry(3, "V1")
    assert entry["id"] == job_id
    assert entry["status"] == "completed"
    assert entry["loraUrl"].endswith("/style_3_vV1.safetensors")
    assert entry["parameters"] == {"learning_rate": 0.0002}
    history = server.history(3, "V1")
    assert PARKED_RULE in rules_of(history), history
    assert [e["type"] for e in history].count("TrainingCompleted") == 1
    # The file is written too.
    content = server.document_bytes(3)
    assert content is not None and server.wait_file(3, content) == content


def test_parked_webhook_is_applied_when_a_pending_entry_with_that_job_id_is_imported(
    server: LedgerServer, tmp_path: Path
) -> None:
    job_id = f"{uuid.uuid4()}-e2"
    response = server.post_webhook(webhook_for(job_id, "style_3_vV2"))
    assert response.status_code == 202, response.text

    legacy = tmp_path / "legacy" / "3_parked_style" / "training_versions.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(
        json.dumps(
            {
                "versions": [
                    {
                        "id": job_id,
                        "name": "V2",
                        "description": "started by the old UI",
                        "timestamp": "2025-10-13T19:36:17.724Z",
                        "parameters": {"learning_rate": 0.0003},
                        "status": "pending",
                        "selectionSetId": "sel-42",
                    }
                ]
            },
            indent=2,
        )
    )
    server.stop()
    imported = server.cli("import", str(legacy), "--style", "3")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    server.start()

    entry = server.entry(3, "V2")
    assert entry["id"] == job_id
    assert entry["status"] == "completed", entry
    assert entry["loraUrl"].endswith("/style_3_vV2.safetensors")
    assert entry["selectionSetId"] == "sel-42"
    assert entry["parameters"] == {"learning_rate": 0.0003}
    assert PARKED_RULE in rules_of(server.history(3, "V2"))
    content = server.document_bytes(3)
    assert content is not None and server.wait_file(3, content) == content
