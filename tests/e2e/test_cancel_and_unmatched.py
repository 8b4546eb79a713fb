"""Cancelling a pending training (RunPod `/cancel`), and the webhooks parked for unknown jobs, from
the route and the CLI (CONTRACT §9)."""

from __future__ import annotations

import json
import types
import uuid

import pytest

import tests.support.runpod_stub as runpod_stub_module
from tests.e2e.conftest import LedgerServer
from tests.e2e.test_parked_webhooks import PARKED_RULE, rules_of, webhook_for


def test_a_cancelled_training_fails_as_cancelled_and_its_cancelled_webhook_is_a_repeat(
    server: LedgerServer,
) -> None:
    job_id = server.started_job(31, "V1")

    answer = server.client.post("/styles/31/versions/V1/cancel")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "failed" and answer.json()["error"] == "cancelled"
    assert server.stub.jobs[job_id].status == "CANCELLED"
    assert any(r.path.endswith(f"/cancel/{job_id}") for r in server.stub.request_log)
    delivery = server.stub.deliver(job_id)  # RunPod's CANCELLED webhook, after the cancel
    assert delivery.status_codes == [200]
    assert server.post_webhook(server.stub.webhook_body(job_id)).json()["result"] == "repeat"
    history = server.history(31, "V1")
    types_seen = [event["type"] for event in history]
    assert types_seen.count("TrainingFailed") == 1, types_seen
    assert types_seen[-2:] == ["WebhookRepeated", "WebhookRepeated"]
    assert history[types_seen.index("TrainingFailed")]["decision"]["source"] == "cancel"
    assert server.entry(31, "V1")["error"] == "cancelled"


def test_cancelling_what_is_not_pending_is_409_and_an_unknown_version_404_and_nothing_changes(
    server: LedgerServer,
) -> None:
    job_id = server.started_job(32, "V1")
    server.stub.complete(job_id)
    before = server.history(32, "V1")

    assert server.client.post("/styles/32/versions/V1/cancel").status_code == 409
    assert server.client.post("/styles/32/versions/V7/cancel").status_code == 404
    assert server.history(32, "V1") == before
    assert not any("/cancel/" in r.path for r in server.stub.request_log)


def test_the_cli_cancels_as_the_route_does(server: LedgerServer) -> None:
    job_id = server.started_job(33, "V1")

    result = server.cli("cancel", "33", "V1", "--json")

    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)
    assert (entry["id"], entry["status"], entry["error"]) == (job_id, "failed", "cancelled")
    again = server.cli("cancel", "33", "V1")
    assert again.returncode == 1 and "only a pending training can be cancelled" in again.stderr


def test_parked_webhooks_are_listed_until_their_job_appears_then_applied(
    server: LedgerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_uuid = uuid.uuid4()
    job_id = f"{job_uuid}-e1"
    for _ in range(2):
        assert server.post_webhook(webhook_for(job_id, "style_34_vV1")).status_code == 202

    listed = server.client.get("/webhooks/unmatched")
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["unmatched"]
    assert (item["job_id"], item["status"], item["model_name"], item["deliveries"]) == (
        job_id,
        "COMPLETED",
        "style_34_vV1",
        2,
    )
    assert item["received_at"].endswith("Z")
    by_cli = server.cli("unmatched", "--json")
    assert by_cli.returncode == 0, by_cli.stderr
    assert json.loads(by_cli.stdout) == listed.json()

    monkeypatch.setattr(runpod_stub_module, "uuid", types.SimpleNamespace(uuid4=lambda: job_uuid))
    assert server.start_training(34, "V1").status_code == 201

    assert server.entry(34, "V1")["status"] == "completed"
    assert PARKED_RULE in rules_of(server.history(34, "V1"))
    assert server.client.get("/webhooks/unmatched").json() == {"unmatched": []}
    assert "no unmatched webhooks" in server.cli("unmatched").stdout
