"""Operating the real `loraledger serve` (CONTRACT §10): `/metrics` moves with what happens, every
JSON log line parses and carries the request id and the outcomes, no secret reaches a log line,
and `/readyz` says when the files fall behind while `/healthz` stays 200."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import WEBHOOK_SECRET, LedgerServer, ServerFactory


def scrape(server: LedgerServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = server.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


CONTRACT_METRICS = {
    "loraledger_webhooks",  # the parser names a counter's family without `_total`
    "loraledger_versions",
    "loraledger_projection_lag_seconds",
    "loraledger_pending_oldest_age_seconds",
    "loraledger_s3_events",
}


def test_metrics_move_after_a_webhook_a_sync_and_a_refused_request(server: LedgerServer) -> None:
    text = server.client.get("/metrics").text
    assert {family.name for family in text_string_to_metric_families(text)} >= CONTRACT_METRICS
    before = scrape(server)
    for result in ("applied", "repeat", "ignored", "unmatched", "rejected"):
        assert ("loraledger_webhooks_total", frozenset({("result", result)})) in before
    assert value(before, "loraledger_projection_lag_seconds") == 0.0

    job_id = server.started_job(1, "V9")
    pending = scrape(server)
    assert value(pending, "loraledger_versions", kind="style", status="pending") == 1
    assert value(pending, "loraledger_pending_oldest_age_seconds") >= 0.0
    assert server.stub.complete(job_id).status_codes == [200]  # RunPod's webhook: applied
    server.bucket.put(server.s3_key("style_2_vV1"))
    server.sync()
    refused = server.post_webhook({"id": job_id}, token="wrong-token")
    assert refused.status_code == 401
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("loraledger_webhooks_total", result="applied") == 1
    assert moved("loraledger_webhooks_total", result="rejected") == 1
    assert moved("loraledger_runs_total", kind="sync", outcome="ok") == 1
    assert moved("loraledger_run_duration_seconds_count", kind="sync") == 1
    assert moved("loraledger_events_appended_total", type="TrainingCompleted") == 1
    assert moved("loraledger_events_appended_total", type="CreatedFromS3") == 1
    assert value(after, "loraledger_versions", kind="style", status="completed") == 2
    assert value(after, "loraledger_versions", kind="style", status="pending") == 0
    assert value(after, "loraledger_pending_oldest_age_seconds") == 0.0
    webhook_route = {"route": "/webhooks/runpod", "method": "POST"}
    assert moved("loraledger_http_request_duration_seconds_count", **webhook_route, status="401") == 1
    assert moved("loraledger_http_request_duration_seconds_count", **webhook_route, status="200") == 1
    start_route = {"route": "/styles/{style_id}/trainings", "method": "POST", "status": "201"}
    assert moved("loraledger_http_request_duration_seconds_count", **start_route) == 1


@pytest.mark.postgres
def test_every_worker_counts_into_one_scrape(make_server: ServerFactory) -> None:
    server = make_server(postgres=True, serve_options=("--workers", "2"))
    refused = 8
    for _ in range(refused):
        # A new connection each time: the kernel hands them to either worker.
        answer = server.client.post(server.webhook_url("bad"), json={}, headers={"Connection": "close"})
        assert answer.status_code == 401
    # Whichever worker answers the scrape, it sums both workers' counters.
    for _ in range(3):
        samples = scrape(server)
        assert value(samples, "loraledger_webhooks_total", result="rejected") == refused


def test_json_logs_of_a_whole_run_parse_line_by_line_and_hold_no_secret(make_server: ServerFactory) -> None:
    server = make_server(extra_env={"LORALEDGER_LOG_FORMAT": "json"})
    given_id = "trace-4b1d.7"
    started = server.client.post(
        "/styles/1/trainings", json={"version_name": "V9"}, headers={"X-Request-ID": given_id}
    )
    assert started.status_code == 201 and started.headers["x-request-id"] == given_id
    job_id = started.json()["id"]
    assert server.stub.complete(job_id).status_codes == [200]
    server.bucket.put(server.s3_key("style_2_vV1"))
    server.sync()
    annotated = server.client.patch("/styles/1/versions/V9", json={"isGood": True})
    assert annotated.status_code == 200
    made_up = annotated.headers["x-request-id"]
    assert server.post_webhook({"id": job_id}, token="wrong-token").status_code == 401
    cli = server.cli("sync", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["scanned"] == 1  # stdout holds the JSON only
    server.stop()

    secrets = [WEBHOOK_SECRET, "wrong-token", server.env["LORALEDGER_RUNPOD_API_KEY"]]
    secrets.append(server.env["AWS_SECRET_ACCESS_KEY"])
    lines = server.stderr_text().splitlines() + cli.stderr.splitlines()
    lines = [line for line in lines if not line.startswith("--- server-")]  # the harness's file names
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines]  # fails on any other line
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert not [line for line in lines if any(secret in line for secret in secrets)]

    access = [entry for entry in entries if entry["logger"] == "uvicorn.access"]
    assert access and all(entry.get("request_id") for entry in access), access
    assert [e["message"] for e in access if e["request_id"] == given_id] == [
        e["message"] for e in access if "/styles/1/trainings" in e["message"]
    ]
    assert any(e["request_id"] == made_up and "PATCH" in e["message"] for e in access)
    outcomes = [entry for entry in entries if entry["logger"] == "loraledger.outcomes"]
    by_command = {entry["command"]: entry for entry in outcomes}
    assert by_command["start"] | {"request_id": given_id} == by_command["start"]
    start, webhook = by_command["start"], by_command["webhook"]
    assert (start["subject"], start["version"], start["job_id"]) == ("style/1", "V9", job_id)
    assert start["rule"] == "start:new-version"
    assert (webhook["subject"], webhook["version"], webhook["job_id"]) == ("style/1", "V9", job_id)
    assert webhook["rule"] == "job-id:exact" and webhook["outcome"] == "complete"
    assert by_command["annotate"]["subject"] == "style/1" and by_command["annotate"]["fields"] == ["isGood"]
    synced = [e for e in outcomes if e["command"] == "sync"]
    assert synced and synced[0]["subject"] == "style/2" and synced[0]["version"] == "V1"
    assert synced[0]["rule"] == "no-match:created"


def test_readyz_is_503_while_the_files_fall_behind_and_healthz_stays_200(server: LedgerServer) -> None:
    assert server.client.get("/readyz").json() == {"status": "ok"}
    (server.output_dir / "1").parent.mkdir(parents=True, exist_ok=True)
    (server.output_dir / "1").write_text("a file where style 1's folder goes")  # its file cannot be written
    server.started_job(1, "V9")

    deadline = time.monotonic() + 15
    ready = server.client.get("/readyz")
    while ready.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = server.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert "behind the event log" in ready.json()["detail"]
    assert server.client.get("/healthz").status_code == 200
    assert value(scrape(server), "loraledger_projection_lag_seconds") > 5

    (server.output_dir / "1").unlink()  # the folder can be made again: the writer catches up
    deadline = time.monotonic() + 15
    while server.client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.client.get("/readyz").json() == {"status": "ok"}
