"""Running unattended (CONTRACT §9) against the real server: S3 events through the queue, the
scheduled reconcile, and one leader among two processes on PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import S3_PREFIX, LedgerServer
from tests.support.s3_queue import EventsQueue
from tests.support.server import ServerFactory

LEADING = "command=leader outcome=leading"


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


def names_in(server: LedgerServer, style_id: int) -> list[str]:
    path = server.file(style_id)
    try:
        return [entry["name"] for entry in json.loads(path.read_text("utf-8"))["versions"]]
    except (OSError, ValueError):
        return []


def queue_env(queue: EventsQueue, **more: str) -> dict[str, str]:
    return {"LORALEDGER_S3_EVENTS_QUEUE_URL": queue.url, "LORALEDGER_SYNC_EVERY": "0", **more}


def test_an_upload_is_in_the_file_within_2_s_through_the_queue_with_no_sync(
    make_server: ServerFactory, s3_events_queue: EventsQueue
) -> None:
    server = make_server(extra_env=queue_env(s3_events_queue))
    wait_for(lambda: LEADING in server.stderr_text(), 10, "the only server leads")

    s3_events_queue.bucket.put(S3_PREFIX + "style_21_vV4.safetensors", b"weights")
    put_at = time.monotonic()

    wait_for(lambda: names_in(server, 21) == ["V4"], 2.0, "the upload in the file")
    print(f"upload to file through the queue: {time.monotonic() - put_at:.2f} s")
    entry = server.entry(21, "V4")
    assert entry["status"] == "completed" and entry["loraUrl"].endswith("/style_21_vV4.safetensors")
    assert server.history(21, "V4")[0]["decision"]["source"] == "s3-event"
    wait_for(lambda: s3_events_queue.count() == 0, 5, "every message deleted")

    s3_events_queue.bucket.delete(S3_PREFIX + "style_21_vV4.safetensors")
    wait_for(lambda: "loraUrl" not in server.entry(21, "V4"), 2.0, "the removal in the file")


def test_the_scheduled_reconcile_completes_a_version_whose_webhook_never_came(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        extra_env={
            "LORALEDGER_RECONCILE_EVERY": "1s",
            "LORALEDGER_RECONCILE_AFTER": "0s",
            "LORALEDGER_SYNC_EVERY": "0",
        }
    )
    job_id = server.started_job(22, "V2")
    server.stub.complete(job_id, deliver=False)  # RunPod knows it ended; the webhook is lost

    wait_for(lambda: server.entry(22, "V2")["status"] == "completed", 15, "completed by reconcile")
    sources = [event["decision"]["source"] for event in server.history(22, "V2") if event.get("decision")]
    assert sources[-1] == "reconcile"
    wait_for(lambda: "command=reconcile outcome=scheduled-run" in server.stderr_text(), 5, "the run logged")


def test_two_servers_on_postgresql_lose_and_duplicate_nothing_when_the_leader_is_killed(
    make_server: ServerFactory, s3_events_queue: EventsQueue
) -> None:
    # In-flight messages of a dead leader come back after the visibility timeout (SQS: 30 s).
    s3_events_queue.client.set_queue_attributes(
        QueueUrl=s3_events_queue.url, Attributes={"VisibilityTimeout": "5"}
    )
    first = make_server(extra_env=queue_env(s3_events_queue), postgres=True)
    second = make_server(twin_of=first)
    leader = wait_for(
        lambda: next((s for s in (first, second) if LEADING in s.stderr_text()), None), 10, "a leader"
    )
    follower = second if leader is first else first
    bucket = s3_events_queue.bucket
    names = [f"V{number}" for number in range(1, 31)]

    for name in names[:15]:
        bucket.put(f"{S3_PREFIX}style_23_v{name}.safetensors", name.encode())
    wait_for(lambda: len(names_in(leader, 23)) >= 3, 10, "the leader at work")
    leader.kill()  # mid-stream: some messages taken in, some in flight, some not yet received
    killed_at = time.monotonic()
    for name in names[15:]:
        bucket.put(f"{S3_PREFIX}style_23_v{name}.safetensors", name.encode())

    wait_for(lambda: LEADING in follower.stderr_text(), 30, "the follower takes over")
    takeover = time.monotonic() - killed_at
    wait_for(lambda: len(names_in(follower, 23)) == len(names), 45, "every upload in the file")

    assert sorted(names_in(follower, 23)) == sorted(names)
    for name in names:
        types = [event["type"] for event in follower.history(23, name)]
        assert types == ["CreatedFromS3"], (name, types)  # recorded once, however often delivered
    wait_for(lambda: s3_events_queue.count() == 0, 15, "every message deleted")
    print(f"takeover after kill -9: {takeover:.1f} s")
