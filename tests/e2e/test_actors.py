"""Actors end to end (CONTRACT §8), on the real server, the S3 test server and the RunPod stand-in:
the design note's flow for an actor, and a style and an actor with the same number in one sync."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import FILE_FRESHNESS, S3_PREFIX, LedgerServer, ServerFactory, load_fixture

ACTOR_PREFIX = "actor_maker_user/custom-actors/models/"
ACTOR_LAYOUT = "data/actors/{actor_id:04d}_*/training_versions.json"
PARAMETERS = {"learning_rate": 0.0003, "max_train_steps": 2100, "network_dim": 16}


def actor_server(make_server: ServerFactory) -> LedgerServer:
    server = make_server(
        {"LORALEDGER_S3_ACTOR_PREFIX": ACTOR_PREFIX, "LORALEDGER_ACTOR_OUTPUT_LAYOUT": ACTOR_LAYOUT},
        start=False,
    )
    (server.output_dir / "data" / "actors" / "0006_european_20_female").mkdir(parents=True)
    return server.start()


def actor_document(server: LedgerServer, actor_id: int) -> dict[str, Any]:
    response = server.client.get(f"/actors/{actor_id}/training_versions.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = json.loads(response.content)
    return document


def file_once_equal(path: Path, expected: bytes) -> bytes:
    """The file's bytes once they equal `expected`, or whatever is there after the contract's 2 s."""
    deadline = time.monotonic() + FILE_FRESHNESS
    while True:
        current = path.read_bytes() if path.exists() else b""
        if current == expected or time.monotonic() >= deadline:
            return current
        time.sleep(0.05)


def started(server: LedgerServer, path: str, version: str, mode: str) -> str:
    body = {"version_name": version, "parameters": PARAMETERS, "input": {"training_config": {"mode": mode}}}
    response = server.client.post(path, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["id"])


def test_an_actor_started_reported_and_synced_is_one_completed_entry_in_its_padded_folder(
    make_server: ServerFactory,
) -> None:
    server = actor_server(make_server)

    # 1. Start V7 of actor 6: RunPod gets the actor's model name, actor_6_V7.
    job_id = started(server, "/actors/6/trainings", "V7", "custom-actors")
    assert server.stub.jobs[job_id].input["training_config"]["model_name"] == "actor_6_V7"

    # 2. RunPod reports the job's end to the webhook.
    delivery = server.stub.complete(job_id)
    assert delivery.status_codes == [200], delivery.errors

    # 3. The LoRA lands under the actors' prefix; a sync finds it.
    server.bucket.put(f"{ACTOR_PREFIX}actor_6_V7.safetensors", b"lora-bytes")
    report = server.sync()
    assert (report["scanned"], report["created"], report["skipped"]) == (1, 0, [])
    assert report["matched_pending"] + report["matched_synced"] == 1

    # 4. One V7 entry, completed, with its LoRA and parameters.
    (entry,) = actor_document(server, 6)["versions"]
    assert (entry["name"], entry["id"], entry["status"]) == ("V7", job_id, "completed")
    assert entry["loraUrl"].endswith(f"{ACTOR_PREFIX}actor_6_V7.safetensors")
    assert {k: entry["parameters"][k] for k in PARAMETERS} == PARAMETERS
    history = server.client.get("/actors/6/versions/v7/history").json()
    assert (history["actor_id"], history["version"]) == (6, "V7")
    assert [e["type"] for e in history["events"]].count("TrainingCompleted") == 1

    # The file is the deployment's padded folder's, within the contract's freshness.
    path = server.output_dir / "data" / "actors" / "0006_european_20_female" / "training_versions.json"
    served = server.client.get("/actors/6/training_versions.json").content
    assert file_once_equal(path, served) == served

    # PATCH mirrors the style route; the style 6 route knows nothing of actor 6.
    patched = server.client.patch("/actors/6/versions/V7", json={"isGood": True})
    assert patched.status_code == 200 and patched.json()["isGood"] is True, patched.text
    assert server.client.get("/styles/6/training_versions.json").status_code == 404


def test_a_style_and_an_actor_with_the_same_number_stay_apart_in_one_sync(make_server: ServerFactory) -> None:
    server = actor_server(make_server)
    style_job = started(server, "/styles/6/trainings", "V7", "custom-styles")
    actor_job = started(server, "/actors/6/trainings", "V7", "custom-actors")
    for job_id in (style_job, actor_job):
        assert server.stub.complete(job_id).status_codes == [200]
    server.bucket.put(f"{S3_PREFIX}style_6_vV7.safetensors", b"style-lora")
    server.bucket.put(f"{ACTOR_PREFIX}actor_6_V7.safetensors", b"actor-lora")
    server.bucket.put(f"{ACTOR_PREFIX}actor_0006_V8.safetensors", b"legacy-spelling")
    server.bucket.put(f"{ACTOR_PREFIX}style_6_vV9.safetensors", b"a style's file in the actors' folder")

    report = server.sync()

    assert (report["scanned"], report["created"], report["matched_pending"] + report["matched_synced"]) == (
        4,
        1,
        2,
    )
    assert [s["key"] for s in report["skipped"]] == [f"{ACTOR_PREFIX}style_6_vV9.safetensors"]
    created = next(d for d in report["decisions"] if d["outcome"] == "create")
    assert any("actor_0006_V8" in note for note in created["notes"])
    style, actor = server.document(6)["versions"], actor_document(server, 6)["versions"]
    assert [(v["name"], v["id"]) for v in style] == [("V7", style_job)]
    assert [(v["name"], v["id"]) for v in actor] == [("V8", "actor_6_V8"), ("V7", actor_job)]
    assert style[0]["loraUrl"].endswith("/style_6_vV7.safetensors")
    assert actor[1]["loraUrl"].endswith("/actor_6_V7.safetensors")

    # A sync of the actor alone lists the actors' prefix only.
    again = server.sync(actor_id=6)
    assert (again["scanned"], again["unchanged"]) == (3, 2)


def test_a_real_actor_webhook_for_a_job_not_started_here_is_parked_then_applied_on_import(
    make_server: ServerFactory,
) -> None:
    server = actor_server(make_server)
    body = load_fixture("runpod/webhook_failed_cd7d6654-c0f1-47c8-85a6-64152f1f95db-e1.json")

    parked = server.post_webhook(body)
    legacy = server.output_dir / "data" / "actors" / "0006_european_20_female" / "training_versions.json"
    legacy.write_text(
        json.dumps({"versions": [{"id": body["id"], "name": "V5", "status": "pending", "parameters": {}}]}),
        encoding="utf-8",
    )
    imported = server.cli("import", str(legacy), "--actor", "6")
    repeat = server.post_webhook(body)

    assert parked.status_code == 202, parked.text
    assert imported.returncode == 0, imported.stderr
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["actor_id"] == 6 and repeat.json()["style_id"] is None
    (entry,) = actor_document(server, 6)["versions"]
    assert (entry["status"], entry["id"]) == ("failed", body["id"])


def test_an_actors_pending_training_is_cancelled_through_its_own_route(make_server: ServerFactory) -> None:
    server = actor_server(make_server)
    job_id = started(server, "/actors/6/trainings", "V2", "custom-actors")
    started(server, "/styles/6/trainings", "V2", "custom-styles")

    answer = server.client.post("/actors/6/versions/V2/cancel")

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["error"]) == ("failed", "cancelled")
    assert any(r.path.endswith(f"/cancel/{job_id}") for r in server.stub.request_log)
    assert server.entry(6, "V2")["status"] == "pending"  # style 6 V2 is another version
    assert server.client.post("/actors/6/versions/V2/cancel").status_code == 409
