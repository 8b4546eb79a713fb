"""Many clients at once, and a file someone else edited."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import FILE_FRESHNESS, HTTP_TIMEOUT, LedgerServer
from tests.support.stores import drop_schema, fresh_postgres_url


def _at_once(count: int, action: Callable[[httpx.Client, int], Any]) -> list[Any]:
    """Run `action(client, i)` in `count` threads released together; returns results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            barrier.wait(timeout=HTTP_TIMEOUT)
            try:
                results[index] = action(client, index)
            except httpx.HTTPError as error:
                results[index] = repr(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT * 2)
    return results


def test_concurrent_starts_of_one_version_give_one_201_and_409s_and_one_runpod_job(
    server: LedgerServer,
) -> None:
    url = f"{server.base_url}/styles/1/trainings"
    names = ["V9"] * 6 + ["V10", "V11"]
    statuses = _at_once(len(names), lambda c, i: c.post(url, json={"version_name": names[i]}).status_code)
    by_name = Counter((names[i], status) for i, status in enumerate(statuses))
    assert by_name == {("V9", 201): 1, ("V9", 409): 5, ("V10", 201): 1, ("V11", 201): 1}, statuses
    versions = server.document(1)["versions"]
    assert [v["name"] for v in versions] == ["V11", "V10", "V9"]
    assert len(server.stub.jobs) == 3
    assert {v["id"] for v in versions} == set(server.stub.jobs)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_starts_without_a_name_each_get_their_own_next_version(
    make_server: Any, store: str
) -> None:
    server: LedgerServer = make_server(postgres=store == "postgres")
    for n in range(1, 5):
        server.started_job(1, f"V{n}")
    url = f"{server.base_url}/styles/1/trainings"

    answers = _at_once(8, lambda c, i: c.post(url, json={}))

    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    names = sorted((a.json()["name"] for a in answers), key=lambda name: int(name[1:]))
    assert names == [f"V{n}" for n in range(5, 13)]
    versions = server.document(1)["versions"]
    assert [v["name"] for v in versions] == [f"V{n}" for n in range(12, 0, -1)]
    assert all(v["status"] == "pending" for v in versions)
    assert {v["id"] for v in versions} == set(server.stub.jobs)  # one RunPod job per version


def test_concurrent_webhooks_for_different_versions_all_land_in_the_file(server: LedgerServer) -> None:
    jobs = {f"V{n}": server.started_job(1, f"V{n}", parameters={"n": n}) for n in range(1, 9)}
    bodies = [json.dumps(dict(server.stub.complete(job, deliver=False))).encode() for job in jobs.values()]
    statuses = _at_once(
        len(bodies),
        lambda c, i: (
            c.post(
                server.webhook_url(), content=bodies[i], headers={"content-type": "application/json"}
            ).status_code
        ),
    )
    assert statuses == [200] * len(bodies)
    content = server.document_bytes(1)
    assert content is not None
    versions = json.loads(content)["versions"]
    assert [v["name"] for v in versions] == [f"V{n}" for n in range(8, 0, -1)]
    assert all(v["status"] == "completed" and v["id"] == jobs[v["name"]] for v in versions), versions
    assert server.wait_file(1, content) == content


def test_an_externally_edited_file_is_taken_in_not_silently_overwritten(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content

    edited = json.loads(content)
    edited["versions"][0]["isGood"] = True
    edited["versions"][0]["note"] = "edited by hand"
    server.file(1).write_bytes(json.dumps(edited, indent=2).encode())

    server.started_job(1, "V10")  # the service writes the file again
    deadline = time.monotonic() + 2 * FILE_FRESHNESS
    while b"edited by hand" not in (server.document_bytes(1) or b""):  # the edit is taken in as events
        assert time.monotonic() < deadline, server.document_bytes(1)
        time.sleep(0.05)
    new = server.document_bytes(1)
    assert new is not None and server.wait_file(1, new) == new
    shown = {v["name"]: v for v in json.loads(new)["versions"]}
    assert shown["V9"]["isGood"] is True and "V10" in shown  # both sides
    assert sorted(p.name for p in server.file(1).parent.iterdir()) == ["training_versions.json"]


@pytest.mark.postgres
def test_on_postgresql_concurrent_starts_and_deliveries_keep_one_entry_and_one_completion(
    make_server: Any,
) -> None:
    database_url = fresh_postgres_url()  # skips when LORALEDGER_TEST_POSTGRES_URL is not set
    server: LedgerServer | None = None
    try:
        server = make_server(extra_env={"LORALEDGER_DATABASE_URL": database_url})
        assert server is not None
        url = f"{server.base_url}/styles/1/trainings"
        statuses = _at_once(4, lambda c, i: c.post(url, json={"version_name": "V9"}).status_code)
        assert sorted(statuses) == [201, 409, 409, 409], statuses
        job_id = next(iter(server.stub.jobs))
        body = json.dumps(dict(server.stub.complete(job_id, deliver=False))).encode()
        webhook, json_type = server.webhook_url(), {"content-type": "application/json"}
        answers = _at_once(5, lambda c, i: c.post(webhook, content=body, headers=json_type).status_code)
        assert answers == [200] * 5
        types = [event["type"] for event in server.history(1, "V9")]
        assert types.count("TrainingCompleted") == 1 and types.count("WebhookRepeated") == 4, types
        content = server.document_bytes(1)
        assert content is not None and server.wait_file(1, content) == content
        server.stop()
        server.start()
        assert server.document_bytes(1) == content
    finally:
        if server is not None:
            server.stop()  # its connections go before the schema does
        drop_schema(database_url)


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_file_that_could_not_be_written_is_written_within_seconds_once_the_folder_is_back(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V9")
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content
    folder = server.file(1).parent
    aside = folder.with_name("1.aside")
    folder.rename(aside)
    folder.write_text("in the way")  # chmod does not stop root; a file where the folder was does

    patched = server.client.patch("/styles/1/versions/V9", json={"note": "while the folder was away"})
    assert patched.status_code == 200, patched.text
    assert _wait_for(lambda: "style 1: its file cannot be written" in server.stderr_text(), 5)
    events = len(server.history(1, "V9"))
    folder.unlink()
    aside.rename(folder)

    expected = server.document_bytes(1)
    assert expected is not None and b"while the folder was away" in expected
    assert server.wait_file(1, expected, timeout=5) == expected  # no new event: the writer retried
    assert len(server.history(1, "V9")) == events


def test_after_restoring_a_backup_of_the_store_the_files_follow_the_restored_log(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V9")
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content
    server.stop()
    saved = server.workdir / "saved.db"
    with sqlite3.connect(server.db_path) as source, sqlite3.connect(saved) as target:
        source.backup(target)
    source.close()
    target.close()
    server.start()
    for n in range(4):  # history the backup will not have
        patched = server.client.patch("/styles/1/versions/V9", json={"note": f"lost {n}"})
        assert patched.status_code == 200, patched.text
    lost = server.document_bytes(1)
    assert lost is not None and server.wait_file(1, lost) == lost
    server.stop()
    for leftover in server.workdir.glob("ledger.db-*"):
        leftover.unlink()
    shutil.copyfile(saved, server.db_path)
    server.start()

    patched = server.client.patch("/styles/1/versions/V9", json={"isGood": True})
    assert patched.status_code == 200, patched.text
    expected = server.document_bytes(1)
    assert expected is not None and b"lost" not in expected and b'"isGood": true' in expected
    assert server.wait_file(1, expected) == expected
    kept = [p.read_bytes() for p in (server.workdir / "state").rglob("*.bak")]  # never beside the file
    assert kept == [lost]


def test_a_style_folder_linked_to_another_styles_folder_is_never_written_and_rebuild_says_why(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V9")
    content = server.document_bytes(1)
    assert content is not None and server.wait_file(1, content) == content
    (server.output_dir / "2").symlink_to(server.output_dir / "1", target_is_directory=True)
    server.started_job(2, "V1")
    server.started_job(3, "V1")
    third = server.document_bytes(3)
    assert third is not None and server.wait_file(3, third) == third

    answer = server.client.post("/projections/rebuild")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["styles"] == [1, 3] and body["failed"] == [2], body
    assert "which is the file of style 1" in body["errors"]["2"]
    assert server.file(1).read_bytes() == content
    assert not [p for p in server.file(1).parent.iterdir() if p.name.endswith(".bak")]
    assert "style 2: its file cannot be written" in server.stderr_text()
