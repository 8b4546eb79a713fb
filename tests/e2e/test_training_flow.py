"""The design note's flow end to end: start on RunPod, webhook, S3 sync, one entry per version."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import HTTP_TIMEOUT, S3_PREFIX, WEBHOOK_SECRET, LedgerServer

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PARAMETERS = {"learning_rate": 0.0003, "max_train_steps": 3600, "network_dim": 16}
DESCRIPTION = "more steps, higher learning rate"


def event_types(history: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in history]


def test_start_webhook_sync_leaves_one_completed_v9_entry_with_parameters(server: LedgerServer) -> None:
    # 1. Start a new training (V9).
    response = server.start_training(1, "V9", parameters=PARAMETERS, description=DESCRIPTION)
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["name"] == "V9"
    assert started["status"] == "pending"
    assert started["parameters"] == PARAMETERS
    assert started["description"] == DESCRIPTION
    assert ISO_MS.match(started["timestamp"]), started
    job_id = started["id"]

    # The stub saw one authorised /run with the model name and the parameters beside it.
    runs = [r for r in server.stub.request_log if r.method == "POST" and r.path.endswith("/run")]
    assert len(runs) == 1 and runs[0].auth_ok
    assert list(server.stub.jobs) == [job_id]
    job = server.stub.jobs[job_id]
    config = job.input["training_config"]
    assert config["model_name"] == "style_1_vV9"
    for key, value in PARAMETERS.items():
        assert config[key] == value
    assert job.webhook == f"{server.base_url}/webhooks/runpod?token={WEBHOOK_SECRET}"

    # 2. Wait for training to complete: RunPod posts the webhook to that URL.
    delivery = server.stub.complete(job_id)
    assert delivery.status_codes == [200], delivery.errors

    # 3. Click "Sync S3 LoRAs".
    server.bucket.put(f"{S3_PREFIX}style_1_vV9.safetensors", b"lora-bytes")
    server.bucket.put(f"{S3_PREFIX}notes.txt", b"not a lora")
    report = server.sync()
    for key in (
        "scanned",
        "matched_pending",
        "matched_synced",
        "created",
        "unchanged",
        "skipped",
        "decisions",
    ):
        assert key in report, report
    assert report["scanned"] == 2
    assert report["created"] == 0
    assert report["matched_pending"] + report["matched_synced"] == 1
    assert [s["key"] for s in report["skipped"]] == [f"{S3_PREFIX}notes.txt"]

    # 4. training_versions.json: ONE V9 entry, with loraUrl, completed, parameters preserved.
    content = server.document_bytes(1)
    assert content is not None
    versions = json.loads(content)["versions"]
    v9 = [v for v in versions if v["name"] == "V9"]
    assert len(v9) == 1, versions
    assert len(versions) == 1, versions
    entry = v9[0]
    assert entry["id"] == job_id
    assert entry["status"] == "completed"
    assert entry["loraUrl"].endswith("/style_1_vV9.safetensors")
    assert entry["parameters"] == PARAMETERS
    assert entry["description"] == DESCRIPTION
    assert ISO_MS.match(entry["completedAt"]), entry
    assert "error" not in entry and "failedAt" not in entry

    # Text form as JSON.stringify(data, null, 2) writes it.
    text = content.decode()
    assert not text.endswith("\n")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False)

    # The file on disk is current: the same bytes as the route answers.
    assert server.wait_file(1, content) == content


def test_sync_before_webhook_keeps_one_entry_and_the_webhook_records_completion(
    make_server: Any,
) -> None:
    accelerated_base = "https://storyboard-user-files.s3-accelerate.amazonaws.com/"
    server: LedgerServer = make_server(extra_env={"LORALEDGER_LORA_URL_BASE": accelerated_base})
    job_id = server.started_job(1, "V9", parameters=PARAMETERS, description=DESCRIPTION)

    server.bucket.put(server.s3_key("style_1_vV9"), b"lora")
    report = server.sync()
    assert report["matched_pending"] == 1, report
    synced = server.entry(1, "V9")
    assert synced["status"] == "completed"
    accelerated_url = f"{accelerated_base}{S3_PREFIX}style_1_vV9.safetensors"
    assert synced["loraUrl"] == accelerated_url

    # The webhook that follows reports a plain (non-accelerated) URL: no downgrade.
    plain_url = f"https://storyboard-user-files.s3.amazonaws.com/{S3_PREFIX}style_1_vV9.safetensors"
    delivery = server.stub.complete(job_id, lora_url=plain_url)
    assert delivery.status_codes == [200]

    versions = server.document(1)["versions"]
    assert [v["name"] for v in versions] == ["V9"], versions
    entry = versions[0]
    assert entry["status"] == "completed"
    assert entry["loraUrl"] == accelerated_url
    assert ISO_MS.match(entry.get("completedAt", "")), entry
    assert entry["parameters"] == PARAMETERS
    assert entry["id"] == job_id

    types = event_types(server.history(1, "V9"))
    assert "LoraSynced" in types and "TrainingCompleted" in types, types
    assert types.index("LoraSynced") < types.index("TrainingCompleted"), types
    assert types.count("TrainingCompleted") == 1, types


def test_webhook_after_plain_url_sync_may_upgrade_to_accelerated_but_adds_nothing(
    server: LedgerServer,
) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS)
    server.bucket.put(server.s3_key("style_1_vV9"), b"lora")
    assert server.sync()["matched_pending"] == 1
    plain = server.entry(1, "V9")["loraUrl"]
    assert "s3-accelerate" not in plain

    delivery = server.stub.complete(job_id)  # the stub reports an s3-accelerate URL
    assert delivery.status_codes == [200]
    entry = server.entry(1, "V9")
    assert len(server.document(1)["versions"]) == 1
    assert entry["loraUrl"] in (plain, delivery["output"]["loraUrl"])
    assert "completedAt" in entry
    assert entry["parameters"] == PARAMETERS


def test_five_concurrent_deliveries_of_one_webhook_record_one_completion_and_four_repeats(
    server: LedgerServer,
) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS)
    body = server.stub.complete(job_id, deliver=False)
    raw = json.dumps(dict(body)).encode()

    barrier = threading.Barrier(5)
    answers: list[int | str] = []
    lock = threading.Lock()

    def deliver() -> None:
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            barrier.wait(timeout=HTTP_TIMEOUT)
            try:
                status: int | str = client.post(
                    server.webhook_url(), content=raw, headers={"content-type": "application/json"}
                ).status_code
            except httpx.HTTPError as error:
                status = repr(error)
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT * 2)
    assert answers == [200] * 5

    types = event_types(server.history(1, "V9"))
    assert types.count("TrainingCompleted") == 1, types
    assert types.count("WebhookRepeated") == 4, types
    assert server.entry(1, "V9")["status"] == "completed"

    # Late repeats the way RunPod sends them (one after the other) stay repeats.
    again = server.stub.deliver(job_id, deliveries=3)
    assert again.status_codes == [200, 200, 200]
    types = event_types(server.history(1, "V9"))
    assert types.count("TrainingCompleted") == 1, types
    assert types.count("WebhookRepeated") == 7, types
    assert len(server.document(1)["versions"]) == 1


def test_restart_on_the_same_database_leaves_the_file_and_the_answer_unchanged(
    server: LedgerServer,
) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS, description=DESCRIPTION)
    server.started_job(1, "V10", parameters={"learning_rate": 0.0001})
    assert server.stub.complete(job_id).status_codes == [200]
    server.bucket.put(server.s3_key("style_1_vV3"), b"old lora")
    assert server.sync()["created"] == 1
    patched = server.client.patch("/styles/1/versions/V9", json={"isGood": True, "selectionSetId": "set-7"})
    assert patched.status_code == 200, patched.text

    before = server.document_bytes(1)
    assert before is not None
    assert server.wait_file(1, before) == before
    files_before = _settled_files(server.output_dir)

    # SIGTERM is a graceful shutdown (uvicorn re-raises the signal afterwards: -15).
    assert server.stop() in (0, -15)
    assert "Application shutdown complete" in server.stderr_text()
    server.start()

    assert server.document_bytes(1) == before
    assert server.file(1).read_bytes() == before
    files_after = _settled_files(server.output_dir)
    assert files_after == files_before  # no backups, no strays
    # A rebuild from the history gives the same bytes too.
    rebuilt = server.client.post("/projections/rebuild")
    assert rebuilt.status_code == 200, rebuilt.text
    assert 1 in rebuilt.json()["styles"]
    assert server.document_bytes(1) == before
    assert server.file(1).read_bytes() == before


def _settled_files(output_dir: Path) -> list[Path]:
    """The output folder's files, without the writer's in-flight temp files."""
    return sorted(p.relative_to(output_dir) for p in output_dir.rglob("*") if not p.name.endswith(".tmp"))
