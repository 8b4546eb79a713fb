"""S3 event notifications over SQS: read each message into changes, hand them on, then delete it.

At-least-once, unordered delivery is the normal case. A message is deleted only after every change
in it was handed on without error (so its effect is recorded); the changes of one batch are handed
on in each key's `sequencer` order. What is not an S3 event of ours is skipped with a reason and
deleted at once; `s3:TestEvent` is deleted silently. A message whose handling fails is made
invisible for longer each time it comes back (never a busy loop), and after MAX_RECEIVES it is
given up (logged, counted, deleted): the scheduled full sync is the safety net for its file.
A queue that cannot be reached is retried with a growing pause; the consumer never stops on it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from loraledger.adapters.metrics import record_external_error, record_s3_event
from loraledger.adapters.s3_listing import _session
from loraledger.domain.indexes import sequencer_order
from loraledger.domain.observations import LoraObject, S3Change

log = logging.getLogger("loraledger.s3_events")

MAX_RECEIVES = 10  # a message that failed this often is given up (1 + 2 + ... + 300 s of retries)
MAX_MESSAGES = 10  # SQS's largest batch
LONGEST_INVISIBLE = 300  # seconds a failing message waits at most before it is tried again
LONGEST_OUTAGE_PAUSE = 30.0  # seconds between tries of a queue that cannot be reached, at most
TEST_EVENT = "s3:TestEvent"

Handle = Callable[[S3Change], str]  # -> the change's outcome (recorded, unchanged, stale, skipped)


@dataclass(slots=True)
class ParsedMessage:
    """A message's changes, and why each record (or the whole body) that is not one was skipped."""

    changes: list[S3Change] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    test_event: bool = False


def parse_message(body: str, bucket: str | None) -> ParsedMessage:
    """An SQS body (an S3 notification, or one wrapped by SNS) -> its changes for `bucket`."""
    parsed = ParsedMessage()
    try:
        document = json.loads(body)
    except ValueError:
        parsed.skipped.append("the message is not JSON")
        return parsed
    if isinstance(document, dict) and document.get("Type") == "Notification":
        return parse_message(str(document.get("Message", "")), bucket)  # delivered through SNS
    if isinstance(document, dict) and document.get("Event") == TEST_EVENT:
        parsed.test_event = True
        return parsed
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        parsed.skipped.append("the message is not an S3 event notification (no Records)")
        return parsed
    for record in records:
        change = _change(record, bucket)
        if isinstance(change, str):
            parsed.skipped.append(change)
        else:
            parsed.changes.append(change)
    return parsed


def _change(record: Any, bucket: str | None) -> S3Change | str:
    """One record -> a change, or why it is skipped."""
    try:
        name = str(record["eventName"])
        s3 = record["s3"]
        record_bucket = str(s3["bucket"]["name"])
        found = s3["object"]
        key = unquote_plus(str(found["key"]))  # S3 URL-encodes keys in events (a space is '+')
    except (KeyError, TypeError):
        return "the record is not an S3 object event"
    if bucket is not None and record_bucket != bucket:
        return f"{key}: bucket {record_bucket!r} is not LORALEDGER_S3_BUCKET"
    if name.startswith("ObjectCreated:"):
        kind = "created"
    elif name.startswith("ObjectRemoved:"):
        kind = "removed"
    else:
        return f"{key}: {name} is neither a created nor a removed object"
    lora = LoraObject(
        key=key,
        etag=str(found.get("eTag") or "").strip('"'),
        size=_size(found.get("size")),
        last_modified=_time(record.get("eventTime")),
    )
    sequencer = found.get("sequencer")
    return S3Change(kind, lora, str(sequencer) if sequencer else None)  # type: ignore[arg-type]


def _size(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def make_sqs_client(queue_url: str, *, connect_timeout: float = 5, read_timeout: float = 30) -> Any:
    """An SQS client for the queue's own endpoint (`https://sqs.<region>.amazonaws.com`, or a local
    server's address), with boto3's usual credentials, as S3 uses them."""
    parts = urlsplit(queue_url)
    endpoint = f"{parts.scheme}://{parts.netloc}"
    host = parts.hostname or ""
    region = host.split(".")[1] if host.startswith("sqs.") and host.count(".") >= 3 else None
    options = Config(
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    session = _session()
    return session.client(
        "sqs", endpoint_url=endpoint, region_name=region or session.region_name or "us-east-1", config=options
    )


class QueueConsumer:
    """Long-polls one queue and hands every change on to `handle` (which records it)."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        handle: Handle,
        *,
        bucket: str | None,
        wait_seconds: int = 5,
        max_receives: int = MAX_RECEIVES,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.handle = handle
        self.bucket = bucket
        self.wait_seconds = wait_seconds
        self.max_receives = max_receives
        self.outage_pause = 0.0

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: poll, and pause (longer each time) while the queue is unreachable."""
        while not stop.is_set():
            try:
                self.poll_once()
                self.outage_pause = 0.0
            except (BotoCoreError, ClientError) as error:
                self.outage_pause = min(max(self.outage_pause * 2, 0.5), LONGEST_OUTAGE_PAUSE)
                record_external_error("sqs", type(error).__name__)
                log.warning(
                    "the S3 events queue cannot be read (%s); again in %.1f s", error, self.outage_pause
                )
                stop.wait(self.outage_pause)

    def poll_once(self) -> int:
        """One receive (waiting up to `wait_seconds`); returns how many messages it got."""
        answer = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=MAX_MESSAGES,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = answer.get("Messages", [])
        if messages:
            self.take(messages)
        return len(messages)

    def take(self, messages: list[dict[str, Any]]) -> None:
        """Hand on every change of the batch in each key's sequencer order, then delete each
        message all of whose changes were handed on."""
        pending: list[tuple[S3Change, str]] = []  # (change, receipt handle)
        for message in messages:
            receipt = message["ReceiptHandle"]
            parsed = parse_message(message.get("Body", ""), self.bucket)
            for reason in parsed.skipped:
                record_s3_event("skipped")
                log.info("S3 event skipped: %s", reason)
            if parsed.test_event:
                record_s3_event("test-event")
            pending.extend((change, receipt) for change in parsed.changes)
        pending.sort(key=lambda item: (item[0].lora.key, sequencer_order(item[0].sequencer or "")))
        failed: dict[str, str] = {}
        for change, receipt in pending:
            if receipt in failed:
                continue
            try:
                outcome = self.handle(change)
            except Exception as error:  # recorded nothing: the message comes back later
                failed[receipt] = f"{type(error).__name__}: {error}"
                continue
            record_s3_event(outcome)
        for message in messages:
            receipt = message["ReceiptHandle"]
            if receipt not in failed:
                self._delete(receipt)
            else:
                self._retry_later(message, failed[receipt])

    def _delete(self, receipt: str) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)

    def _retry_later(self, message: dict[str, Any], error: str) -> None:
        receipt = message["ReceiptHandle"]
        received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if received >= self.max_receives:
            record_s3_event("given-up")
            log.error(
                "S3 event given up after %d tries (the scheduled sync will see its file): %s", received, error
            )
            self._delete(receipt)
            return
        record_s3_event("failed")
        wait = min(2 ** (received - 1), LONGEST_INVISIBLE)
        log.warning("S3 event not recorded (%s); tried again in %d s", error, wait)
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=wait
        )
