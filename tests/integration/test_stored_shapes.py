"""Stores written by older code keep working: their events read to the same files and histories.

tests/fixtures/stored/ holds the notification log an earlier version of the service recorded (every
event type; see its README). Loaded into a fresh store, the current code must render the same
documents and history JSON byte for byte, and then go on recording on top of those aggregates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from loraledger.adapters.store import prepare_store, store_env, store_exists
from loraledger.api.render import history_json
from loraledger.domain.ledger import Ledger, LedgerConfig
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.projections.runner import read_batches
from loraledger.projections.training_versions import StyleDocuments

STORED = Path(__file__).resolve().parents[1] / "fixtures" / "stored"
PLAIN = "https://bucket.s3.amazonaws.com/"
PREFIX = "models/"
NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
V9_JOB = "ec487842-b853-4ca1-ba91-76bba6a59009-e1"


def stored_records() -> list[dict[str, Any]]:
    lines = (STORED / "v1_notifications.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def expected() -> dict[str, Any]:
    return json.loads((STORED / "v1_expected.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """A fresh store holding exactly the old log."""
    prepare_store(database_url)
    opened = Ledger(
        store_env(database_url), config=LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX), clock=lambda: NOW
    )
    opened.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"].encode("utf-8"),
            )
            for row in stored_records()
        ]
    )
    yield opened
    opened.close()


def documents(ledger: Ledger) -> dict[str, str | None]:
    folded = StyleDocuments()
    for _, events in read_batches(ledger, 0):
        for event in events:
            folded.apply(event)
    return {str(style_id): folded.render(style_id) for style_id in folded.styles()}


def histories(ledger: Ledger, style_ids: list[int]) -> dict[str, Any]:
    return {
        f"{style_id}/{name}": history_json(style_id, name, ledger.history(style_id, name))
        for style_id in style_ids
        for name in ledger.version_names(style_id)
    }


def test_the_fixture_holds_every_topic_the_old_code_recorded() -> None:
    topics = {row["topic"] for row in stored_records()}
    assert topics == set(expected()["topics"])
    assert len(topics) == 19


def test_old_events_render_the_same_documents_and_histories(ledger: Ledger, database_url: str) -> None:
    assert Ledger.name == "loraledger"  # the table names (`loraledger_events`) come from it
    assert store_exists(database_url)
    want = expected()

    assert documents(ledger) == want["documents"]
    assert histories(ledger, [1, 2]) == want["histories"]
    # The aggregates (what commands see) agree with the fold.
    assert [v.document_entry() for v in ledger.style_versions(1)] == json.loads(want["documents"]["1"])[
        "versions"
    ]


def test_old_aggregates_take_a_webhook_and_a_sync(ledger: Ledger) -> None:
    completed = JobReport(V9_JOB, "COMPLETED", "success", "style_1_vV9", None, None, {})
    result = ledger.apply_report(completed)
    repeat = ledger.apply_report(JobReport("ec487842-b853-4ca1-ba91-76bba6a59001-e1", "COMPLETED", "success"))
    sync = ledger.observe_lora_files(
        [
            LoraObject(PREFIX + "style_1_vV1.safetensors", '"e1"', 1234, NOW),  # recorded before: unchanged
            LoraObject(PREFIX + "style_1_vV11.safetensors", '"e11"', 1234, NOW),
            LoraObject(PREFIX + "style_2_vV2.safetensors", '"e22"', 1234, NOW),
        ],
        url_base=PLAIN,
    )

    assert (result.result, result.version_name) == ("applied", "V9")
    assert (repeat.result, repeat.version_name) == ("repeat", "V1")
    assert (sync.unchanged, sync.created, sync.matched_pending) == (1, 1, 1)
    v9 = ledger.find_version(1, "V9")
    assert v9 is not None and v9.status == "completed"
    assert v9.lora_url == PLAIN + PREFIX + "style_1_vV9.safetensors"
    assert ledger.version_names(1)[:2] == ["V11", "V10"]
    v2 = ledger.find_version(2, "V2")
    assert v2 is not None and (v2.status, v2.entry.get("imageCount")) == ("completed", 12)
    old = expected()["documents"]
    now = documents(ledger)
    assert now["2"] != old["2"] and now["1"] != old["1"]
