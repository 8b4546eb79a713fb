"""Starting trainings: RunPod failures, conflicts, and names that are not names."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import LedgerServer, free_port

START_REFUSED_RULE = "start:runpod-refused-or-unreachable"


def _assert_failed_with_reason(server: LedgerServer, name: str) -> dict[str, Any]:
    entry = server.entry(1, name)
    assert entry["status"] == "failed", entry
    assert "RunPod" in entry["error"], entry
    assert "failedAt" in entry
    assert "loraUrl" not in entry
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content
    history = server.history(1, name)
    assert history[-1]["type"] == "TrainingFailed", history
    assert history[-1]["decision"]["rule"] == START_REFUSED_RULE
    return entry


def test_runpod_answering_500_makes_start_a_502_and_the_version_failed_with_the_reason(
    server: LedgerServer,
) -> None:
    server.stub.fail_next(50, 500)
    response = server.start_training(1, "V9", parameters={"learning_rate": 0.0003})
    assert response.status_code == 502, response.text
    assert "RunPod" in response.json()["detail"]
    entry = _assert_failed_with_reason(server, "V9")
    assert "500" in entry["error"], entry
    assert entry["parameters"] == {"learning_rate": 0.0003}
    assert server.stub.jobs == {}

    attempts = [r for r in server.stub.request_log if r.path.endswith("/run")]
    assert len(attempts) >= 1

    # A failed version may be started again once RunPod is back (the stub has no public "heal").
    with server.stub._lock:
        server.stub._faults.clear()
    again = server.start_training(1, "V9")
    assert again.status_code == 201, again.text
    assert server.entry(1, "V9")["status"] == "pending"


def test_runpod_refusing_with_400_makes_start_a_502_and_the_version_failed(server: LedgerServer) -> None:
    server.stub.fail_next(1, 400)
    response = server.start_training(1, "V9")
    assert response.status_code == 502, response.text
    _assert_failed_with_reason(server, "V9")


def test_runpod_unreachable_makes_start_a_502_and_the_version_failed_not_pending(make_server: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v2"
    server: LedgerServer = make_server(extra_env={"LORALEDGER_RUNPOD_BASE_URL": closed})
    response = server.start_training(1, "V9")
    assert response.status_code == 502, response.text
    _assert_failed_with_reason(server, "V9")


def test_runpod_answering_a_job_id_another_version_has_makes_start_a_502_and_the_version_failed(
    server: LedgerServer,
) -> None:
    job_of_v3 = server.started_job(1, "V3")
    server.stub.answer_next_run_with(job_of_v3)

    response = server.start_training(1, "V4")

    assert response.status_code == 502, response.text
    assert f"job id {job_of_v3}" in response.json()["detail"]
    entry = _assert_failed_with_reason(server, "V4")
    assert "already belongs to style 1 V3" in entry["error"]
    assert entry["id"] != job_of_v3
    assert server.entry(1, "V3")["id"] == job_of_v3 and server.entry(1, "V3")["status"] == "pending"
    assert server.start_training(1, "V4").status_code == 201  # a failed version can be started again


def test_runpod_answering_a_job_id_that_is_not_an_id_makes_start_a_502_and_reconcile_stays_clean(
    server: LedgerServer,
) -> None:
    server.stub.answer_next_run_with("../../etc/passwd")

    response = server.start_training(1, "V9")

    assert response.status_code == 502, response.text
    assert "unusable job id" in response.json()["detail"]
    entry = _assert_failed_with_reason(server, "V9")
    assert "passwd" not in json.dumps(server.history(1, "V9")[:-1])  # never stored as an id
    assert "../" not in entry["id"]
    reconcile = server.client.post("/reconcile", params={"older_than": "0s"})
    assert reconcile.status_code == 200, reconcile.text
    assert reconcile.json()["errors"] == []


def test_starting_a_pending_or_completed_version_again_is_409(server: LedgerServer) -> None:
    job_id = server.started_job(1, "V9", parameters={"learning_rate": 0.0003})
    before = server.document_bytes(1)

    pending = server.start_training(1, "V9", parameters={"learning_rate": 0.1})
    assert pending.status_code == 409, pending.text
    assert "pending" in pending.json()["detail"]
    assert server.start_training(1, "v9").status_code == 409  # case-insensitive name
    assert server.document_bytes(1) == before

    assert server.stub.complete(job_id).status_codes == [200]
    completed_doc = server.document_bytes(1)
    completed = server.start_training(1, "V9")
    assert completed.status_code == 409, completed.text
    assert "completed" in completed.json()["detail"]
    assert server.document_bytes(1) == completed_doc
    assert len(server.stub.jobs) == 1  # RunPod was never asked again


def test_version_names_are_case_insensitive_and_default_to_the_next_number(server: LedgerServer) -> None:
    assert server.start_training(1, "v3").json()["name"] == "V3"
    response = server.start_training(1, None)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "V4"
    names = [v["name"] for v in server.document(1)["versions"]]
    assert names == ["V4", "V3"]  # newest first


def test_malformed_version_names_and_style_ids_are_422_and_unknown_styles_404(server: LedgerServer) -> None:
    wrong: dict[str, Any] = {}
    for name in (
        "V08",
        "V0",
        "V",
        "8",
        "V-1",
        "V1.5",
        "style_1_vV8",
        "V8/../V9",
        "V 8",
        "\u21648",  # ROMAN NUMERAL FIVE, then 8
        "V" + "9" * 40,
    ):
        response = server.start_training(1, name)
        if response.status_code != 422:
            wrong[f"start {name!r}"] = response.status_code
    for style in ("01", "0", "-1", "abc", "1.0", "%2e%2e", "1%20", "1_0", "+1", "%201%20", "true"):
        for method, path in (
            ("POST", f"/styles/{style}/trainings"),
            ("GET", f"/styles/{style}/training_versions.json"),
            ("GET", f"/styles/{style}/versions/V1/history"),
            ("PATCH", f"/styles/{style}/versions/V1"),
        ):
            body = {"version_name": "V1"} if method == "POST" else {"isGood": True}
            response = server.client.request(method, path, json=body if method != "GET" else None)
            if response.status_code != 422:
                wrong[f"{method} {path}"] = response.status_code
    for name in ("V08", "x", "V0"):
        response = server.client.get(f"/styles/1/versions/{name}/history")
        if response.status_code != 422:
            wrong[f"history {name}"] = response.status_code
    assert wrong == {}
    assert server.stub.jobs == {}, "RunPod must not be asked for a bad name"

    for path in ("/styles/77/training_versions.json", "/styles/77/versions/V1/history"):
        response = server.client.get(path)
        assert response.status_code == 404, (path, response.text)
        assert "detail" in response.json()
    assert not any(server.output_dir.rglob("training_versions.json"))
    assert server.healthy()


def test_a_start_without_a_name_after_v999999999_is_a_409_saying_the_numbers_are_used_up(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V999999999")
    before = server.document_bytes(1)

    response = server.start_training(1, None)

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "V999999999 is the highest version number" in detail and "give a version_name" in detail
    assert server.document_bytes(1) == before
    assert len(server.stub.jobs) == 1  # RunPod was never asked
    assert server.start_training(1, "V3").status_code == 201  # a free name can still be given


def test_the_sync_body_takes_a_style_id_only_as_a_plain_json_integer(server: LedgerServer) -> None:
    server.bucket.put(server.s3_key("style_10_vV1"))
    wrong = {}
    for value in ("1_0", "+1", " 1 ", "1", "10", True, 1.0, 10.0, 0, -1, 1_000_000_000, [10], {"id": 10}):
        response = server.client.post("/sync/s3", json={"style_id": value})
        if response.status_code != 422:
            wrong[repr(value)] = (response.status_code, response.text[:200])
    assert wrong == {}
    assert server.document_bytes(10) is None  # nothing was synced

    assert server.sync(style_id=1)["created"] == 0
    assert server.document_bytes(10) is None
    assert server.sync(style_id=10)["created"] == 1
    assert server.entry(10, "V1")["status"] == "completed"
