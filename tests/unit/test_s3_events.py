"""S3 event notifications read into changes, ordered by sequencer, and a removed file on its version."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loraledger.adapters.s3_events import parse_message
from loraledger.domain.decisions import Decision, Rule, SyncOutcome
from loraledger.domain.errors import TransitionRefused
from loraledger.domain.indexes import StyleIndex, sequencer_order
from loraledger.domain.matching import StyleCandidates, match_lora_file
from loraledger.domain.naming import parse_lora_key
from loraledger.domain.observations import LoraObject
from loraledger.domain.training_version import TrainingVersion

BUCKET = "loras"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = "models/style_1_vV9.safetensors"
URL = "https://loras.s3.amazonaws.com/" + KEY
REMOVED = Decision("s3-event", Rule.FILE_REMOVED, SyncOutcome.REMOVED)


def body(name: str, key: str, *, bucket: str = BUCKET, sequencer: str | None = None) -> str:
    found = {"key": key, "size": 12, "eTag": "abc"}
    if sequencer:
        found["sequencer"] = sequencer
    record = {
        "eventName": name,
        "eventTime": "2026-01-02T03:04:05.000Z",
        "s3": {"bucket": {"name": bucket}, "object": found},
    }
    return json.dumps({"Records": [record]})


def test_a_created_and_a_removed_record_are_read_with_the_key_decoded() -> None:
    created = parse_message(
        body("ObjectCreated:Put", "team+a%2Fstyle_1_vV9.safetensors", sequencer="0A"), BUCKET
    )
    [change] = created.changes
    assert (change.kind, change.lora.key, change.lora.size, change.lora.etag) == (
        "created",
        "team a/style_1_vV9.safetensors",
        12,
        "abc",
    )
    assert change.sequencer == "0A" and change.lora.last_modified == AT
    assert parse_message(body("ObjectRemoved:Delete", KEY), BUCKET).changes[0].kind == "removed"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ('{"hello": 1}', "no Records"),
        (body("ObjectCreated:Put", KEY, bucket="other"), "is not LORALEDGER_S3_BUCKET"),
        (body("ObjectRestore:Completed", KEY), "neither a created nor a removed object"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "not an S3 object event"),
    ],
)
def test_what_is_not_an_s3_change_of_the_bucket_is_skipped_with_its_reason(text: str, reason: str) -> None:
    parsed = parse_message(text, BUCKET)
    assert parsed.changes == [] and len(parsed.skipped) == 1 and reason in parsed.skipped[0]


def test_the_test_event_is_neither_a_change_nor_a_skip_and_sns_wrapping_is_opened() -> None:
    test_event = parse_message('{"Service": "Amazon S3", "Event": "s3:TestEvent"}', BUCKET)
    assert test_event.test_event and not test_event.changes and not test_event.skipped
    wrapped = json.dumps({"Type": "Notification", "Message": body("ObjectCreated:Put", KEY)})
    assert parse_message(wrapped, BUCKET).changes[0].lora.key == KEY


def test_sequencers_compare_as_hexadecimal_numbers_so_a_shorter_one_can_be_later() -> None:
    assert sequencer_order("0055AED6DCD90281E5") < sequencer_order("0055AED6DCD90281E6")
    assert sequencer_order("FF") > sequencer_order("00FE")
    index = StyleIndex.open(1)
    index.see_sequencer(KEY, "0A")
    assert not index.is_news(KEY, "0A")  # a redelivery
    assert not index.is_news(KEY, "09")  # overtaken
    assert index.is_news(KEY, "0B") and index.is_news(KEY, None) and index.is_news("other", "01")


def synced_version() -> TrainingVersion:
    lora = LoraObject(KEY, "abc", 12, AT)
    decided = match_lora_file(lora, parse_lora_key(KEY), StyleCandidates(()), URL, None, "s3-event")
    assert decided.decision.source == "s3-event"
    return TrainingVersion.from_file(1, decided, lora, AT)


def test_a_removed_file_is_forgotten_and_its_loraurl_no_longer_offered() -> None:
    version = synced_version()

    version.remove_file(KEY, offered_url=URL, at=AT, decision=REMOVED)

    assert version.lora_url is None and KEY not in version.files
    assert version.status == "completed"
    with pytest.raises(TransitionRefused):  # removed twice: nothing to remove
        version.remove_file(KEY, offered_url=URL, at=AT, decision=REMOVED)


def test_removing_another_file_of_the_version_keeps_the_loraurl_that_names_a_different_file() -> None:
    version = synced_version()
    other = "elsewhere/style_1_vV9_copy.safetensors"
    version.files[other] = "def"  # a second file once seen for it

    version.remove_file(other, offered_url="https://loras.s3.amazonaws.com/" + other, at=AT, decision=REMOVED)

    assert version.lora_url == URL
