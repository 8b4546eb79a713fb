"""Reconcile: RunPod's `/status` stands in for a webhook that never came."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import LedgerServer


def _reconcile(server: LedgerServer, older_than: str = "0s") -> dict[str, Any]:
    response = server.client.post("/reconcile", params={"older_than": older_than})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_reconcile_completes_a_version_whose_webhook_was_lost(server: LedgerServer) -> None:
    job_id = server.started_job(1, "V9", parameters={"learning_rate": 0.0003})
    server.stub.complete(job_id, deliver=False)  # RunPod finished; the webhook never arrived
    assert server.entry(1, "V9")["status"] == "pending"

    # Not old enough yet: nothing is asked.
    assert _reconcile(server, "1h")["checked"] == 0
    assert server.entry(1, "V9")["status"] == "pending"

    report = _reconcile(server)
    assert report["checked"] == 1 and report["applied"] == 1, report
    entry = server.entry(1, "V9")
    assert entry["status"] == "completed", entry
    assert entry["loraUrl"].endswith("/style_1_vV9.safetensors")
    assert entry["parameters"] == {"learning_rate": 0.0003}
    assert "completedAt" in entry
    completions = [e for e in server.history(1, "V9") if e["type"] == "TrainingCompleted"]
    assert len(completions) == 1
    assert completions[0]["decision"]["source"] == "reconcile"
    status_calls = [r for r in server.stub.request_log if "/status/" in r.path]
    assert status_calls and all(r.auth_ok for r in status_calls)

    # The late webhook is then a repeat; a second reconcile has nothing to do.
    assert server.stub.deliver(job_id).status_codes == [200]
    types = [e["type"] for e in server.history(1, "V9")]
    assert types.count("TrainingCompleted") == 1, types
    assert _reconcile(server)["checked"] == 0
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content


def test_reconcile_fails_a_job_runpod_has_forgotten_once_the_grace_period_is_over(make_server: Any) -> None:
    server: LedgerServer = make_server(extra_env={"LORALEDGER_RECONCILE_GRACE": "0s"})
    job_id = server.started_job(1, "V9")
    running_id = server.started_job(1, "V10")
    server.stub.expire(job_id)
    server.stub.set_status(running_id, "IN_PROGRESS")

    report = _reconcile(server)
    assert report["checked"] == 2, report
    assert report["failed_unknown"] == 1, report
    assert report["still_running"] == 1, report

    entry = server.entry(1, "V9")
    assert entry["status"] == "failed", entry
    assert job_id in entry["error"] and "RunPod" in entry["error"], entry
    assert "failedAt" in entry
    failed = [e for e in server.history(1, "V9") if e["type"] == "TrainingFailed"]
    assert len(failed) == 1
    assert failed[0]["decision"]["source"] == "reconcile"
    assert failed[0]["decision"]["rule"] == "reconcile:unknown-to-runpod-after-grace"
    assert server.entry(1, "V10")["status"] == "pending"


def test_reconcile_waits_for_the_grace_period_before_failing_a_forgotten_job_and_rejects_bad_durations(
    server: LedgerServer,
) -> None:
    for older_than in ("soon", "-5m", "15", "1y", ""):
        response = server.client.post("/reconcile", params={"older_than": older_than})
        assert response.status_code == 422, (older_than, response.text)

    job_id = server.started_job(1, "V9")
    server.stub.expire(job_id)
    report = _reconcile(server)  # default grace (1h) has not passed
    assert report["waiting"] == 1 and report["failed_unknown"] == 0, report
    assert server.entry(1, "V9")["status"] == "pending"
