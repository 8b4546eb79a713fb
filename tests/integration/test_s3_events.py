"""S3 event notifications through a real SQS queue (moto's server): the bucket's own messages on
put and delete, and hand-made ones for what moto does not send (sequencers, other buckets)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loraledger.adapters.s3_events import QueueConsumer
from loraledger.api.bootstrap import open_service
from loraledger.api.facade import Service
from loraledger.api.settings import Settings
from loraledger.domain.observations import S3Change
from tests.support.s3_queue import EventsQueue
from tests.support.s3_server import FaultyEndpoint, S3Bucket

PREFIX = "actor_maker_user/custom-styles-models/"
KEY = PREFIX + "style_7_vV3.safetensors"


@pytest.fixture
def service(s3_events_queue: EventsQueue, tmp_path: Path) -> Iterator[Service]:
    bucket = s3_events_queue.bucket
    made = open_service(
        Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
            output_dir=str(tmp_path / "styles"),
            s3_bucket=bucket.name,
            s3_prefix=PREFIX,
            s3_endpoint_url=bucket.server.endpoint_url,
            s3_events_queue_url=s3_events_queue.url,
        )
    )
    yield made
    made.close()


def consumer_of(service: Service, **options: Any) -> QueueConsumer:
    consumer = service.queue_consumer()
    assert consumer is not None
    consumer.wait_seconds = 0
    for name, value in options.items():
        setattr(consumer, name, value)
    return consumer


def drain(consumer: QueueConsumer) -> None:
    """Poll until a receive finds nothing."""
    while consumer.poll_once():
        pass


def entries(service: Service, style_id: int = 7) -> dict[str, dict[str, Any]]:
    path = service.files.path_for(style_id)
    if not path.exists():
        return {}
    return {entry["name"]: entry for entry in json.loads(path.read_text("utf-8"))["versions"]}


def events_of(service: Service, version: str = "V3", style_id: int = 7) -> list[str]:
    return [event["type"] for event in service.history(style_id, version)["events"]]


def lora_url(bucket: S3Bucket, key: str = KEY) -> str:
    return f"{bucket.server.endpoint_url}/{bucket.name}/{key}"


def test_an_uploaded_lora_is_recorded_from_its_event_with_no_sync(
    service: Service, s3_events_queue: EventsQueue
) -> None:
    bucket = s3_events_queue.bucket
    bucket.put(KEY, b"weights")

    drain(consumer_of(service))

    entry = entries(service)["V3"]
    assert entry["status"] == "completed" and entry["loraUrl"] == lora_url(bucket)
    history = service.history(7, "V3")["events"]
    assert history[0]["decision"]["source"] == "s3-event"
    assert s3_events_queue.count() == 0  # the test event and the upload's message: both deleted


def test_a_key_with_spaces_is_decoded_before_matching(service: Service, s3_events_queue: EventsQueue) -> None:
    key = PREFIX + "team a/style_7_vV3.safetensors"
    s3_events_queue.bucket.put(key, b"weights")  # S3 writes the space as '+' in the event

    drain(consumer_of(service))

    assert entries(service)["V3"]["loraUrl"].endswith("/team%20a/style_7_vV3.safetensors")


def test_a_redelivered_or_duplicate_message_records_nothing_new(
    service: Service, s3_events_queue: EventsQueue
) -> None:
    bucket = s3_events_queue.bucket
    etag = bucket.put(KEY, b"weights")
    consumer = consumer_of(service)
    drain(consumer)
    before = events_of(service)
    head = service.ledger.store.recorder.max_notification_id()

    for _ in range(3):  # the same notification again, as at-least-once delivery may bring it
        s3_events_queue.send(s3_events_queue.event("ObjectCreated:Put", KEY, etag=etag, size=7))
    drain(consumer)

    assert events_of(service) == before
    assert service.ledger.store.recorder.max_notification_id() == head
    assert s3_events_queue.count() == 0


def test_a_removed_file_stops_being_the_loraurl_until_it_is_back(
    service: Service, s3_events_queue: EventsQueue
) -> None:
    bucket = s3_events_queue.bucket
    bucket.put(KEY, b"weights")
    consumer = consumer_of(service)
    drain(consumer)

    bucket.delete(KEY)
    drain(consumer)
    removed = entries(service)["V3"]
    assert "loraUrl" not in removed and removed["status"] == "completed"
    assert events_of(service)[-1] == "LoraRemoved"

    bucket.delete(KEY)  # deleting what is gone: S3 notifies again; nothing new is recorded
    drain(consumer)
    assert events_of(service).count("LoraRemoved") == 1

    bucket.put(KEY, b"weights")  # the same bytes again: the same ETag, still matched again
    drain(consumer)
    assert entries(service)["V3"]["loraUrl"] == lora_url(bucket)


def test_what_is_not_a_lora_event_of_ours_is_skipped_and_deleted(
    service: Service, s3_events_queue: EventsQueue
) -> None:
    bucket = s3_events_queue.bucket
    bucket.put(PREFIX + "notes.txt", b"hello")
    bucket.put("elsewhere/style_7_vV3.safetensors", b"weights")  # outside the prefix
    s3_events_queue.send("not json at all")
    s3_events_queue.send({"hello": "world"})
    other = s3_events_queue.event("ObjectCreated:Put", KEY)
    other["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    s3_events_queue.send(other)
    s3_events_queue.send(s3_events_queue.event("ObjectRestore:Completed", KEY))
    taken: list[str] = []
    consumer = consumer_of(service)
    handle = consumer.handle
    consumer.handle = lambda change: taken.append(handle(change)) or taken[-1]  # type: ignore[func-returns-value]

    drain(consumer)

    assert taken == ["skipped", "skipped"]  # the two files; the rest never reached the ledger
    assert entries(service) == {}
    # What is recorded is the skip of the file inside the prefix, once, with why (CONTRACT §12).
    (skip,) = service.skipped_files()
    assert (skip["key"], skip["source"], skip["rule"]) == (
        PREFIX + "notes.txt",
        "s3-event",
        "skipped:key-is-not-a-lora-name",
    )
    assert s3_events_queue.count() == 0


def test_changes_of_one_key_are_taken_in_sequencer_order_and_a_late_older_one_changes_nothing(
    service: Service, s3_events_queue: EventsQueue
) -> None:
    queue = s3_events_queue
    consumer = consumer_of(service)
    drain(consumer)  # the configuration's test event
    # One batch, delivered newest first: put (…A1), delete (…A2), put again (…B0).
    for name, sequencer in (
        ("ObjectCreated:Put", "0055AED6DCD90281E5B0"),
        ("ObjectRemoved:Delete", "0055AED6DCD90281E5A2"),
        ("ObjectCreated:Put", "0055AED6DCD90281E5A1"),
    ):
        queue.send(queue.event(name, KEY, sequencer=sequencer, etag="a" * 32))
    drain(consumer)
    assert events_of(service) == ["CreatedFromS3", "LoraRemoved", "LoraSynced"]

    # A delete older than the last put arrives late, in a batch of its own: it is stale.
    queue.send(queue.event("ObjectRemoved:Delete", KEY, sequencer="0055AED6DCD90281E5AF"))
    drain(consumer)
    assert events_of(service) == ["CreatedFromS3", "LoraRemoved", "LoraSynced"]
    assert "loraUrl" in entries(service)["V3"]
    assert queue.count() == 0


def test_a_message_that_keeps_failing_waits_longer_each_time_then_is_given_up(
    service: Service, s3_events_queue: EventsQueue
) -> None:
    consumer = consumer_of(service)
    drain(consumer)
    tries: list[float] = []

    def failing(change: S3Change) -> str:
        tries.append(time.monotonic())
        raise RuntimeError("the store refused it")

    consumer.handle = failing
    consumer.max_receives = 3
    s3_events_queue.send(s3_events_queue.event("ObjectCreated:Put", KEY))

    deadline = time.monotonic() + 20
    while s3_events_queue.count() and time.monotonic() < deadline:
        consumer.poll_once()

    assert len(tries) == 3  # not a busy loop: each failure hid the message for 1 s, then 2 s
    assert tries[1] - tries[0] >= 0.9 and tries[2] - tries[1] >= 1.9
    assert s3_events_queue.count() == 0  # given up (logged and counted), not retried forever


def test_a_queue_that_is_briefly_unreachable_loses_nothing(
    service: Service, s3_events_queue: EventsQueue, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    bucket = s3_events_queue.bucket
    proxied = s3_events_queue.url.replace(bucket.server.endpoint_url, s3_faulty_endpoint.endpoint_url)
    from loraledger.adapters.s3_events import make_sqs_client

    consumer = QueueConsumer(
        make_sqs_client(proxied), proxied, service.take_s3_change, bucket=bucket.name, wait_seconds=0
    )
    s3_faulty_endpoint.fail_next(8, status=503, code="ServiceUnavailable")
    bucket.put(KEY, b"weights")
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    began = time.monotonic()
    try:
        wait_for(lambda: "V3" in entries(service), seconds=30)
        print(f"recorded {time.monotonic() - began:.1f} s after the queue began failing")
    finally:
        stop.set()
        thread.join(timeout=10)

    assert s3_faulty_endpoint.faults_served == 8
    assert entries(service)["V3"]["loraUrl"] == lora_url(bucket)
    assert s3_events_queue.count() == 0


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)
