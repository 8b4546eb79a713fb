"""An SQS queue on the moto test server that receives a bucket's real S3 event notifications.

Fixture `s3_events_queue` (function): a fresh queue, with `s3_bucket`'s notifications pointed at
it (`put_bucket_notification_configuration`: moto then sends a message on every put and delete,
and first an `s3:TestEvent`, as S3 does). `EventsQueue` has `url`, `send()` for hand-made bodies,
`count()` of the messages left (visible or in flight) and `receive()` to look without deleting.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tests.support.s3_server import FAKE_ACCESS_KEY, FAKE_REGION, FAKE_SECRET_KEY, S3Bucket

NOTIFIED_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def sqs_client(endpoint_url: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=FAKE_REGION,
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
    )


@dataclass
class EventsQueue:
    url: str
    bucket: S3Bucket
    client: Any = field(repr=False)

    def send(self, body: str | dict[str, Any]) -> None:
        self.client.send_message(
            QueueUrl=self.url, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )

    def count(self) -> int:
        """Messages not yet deleted: visible, in flight, or waiting out a delay."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def event(
        self, name: str, key: str, *, sequencer: str | None = None, etag: str = "0" * 32, size: int = 2
    ) -> dict[str, Any]:
        """A notification body as S3 writes it (the key URL-encoded, a space as '+')."""
        from urllib.parse import quote_plus

        found: dict[str, Any] = {"key": quote_plus(key, safe=""), "size": size, "eTag": etag}
        if sequencer is not None:
            found["sequencer"] = sequencer
        return {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventTime": "2026-01-02T03:04:05.000Z",
                    "eventName": name,
                    "s3": {"bucket": {"name": self.bucket.name}, "object": found},
                }
            ]
        }


@pytest.fixture
def s3_events_queue(s3_bucket: S3Bucket) -> EventsQueue:
    client = sqs_client(s3_bucket.server.endpoint_url)
    url = client.create_queue(QueueName=f"loraledger-events-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3_bucket.server.client().put_bucket_notification_configuration(
        Bucket=s3_bucket.name,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": NOTIFIED_EVENTS}]},
    )
    return EventsQueue(url, s3_bucket, client)
