"""Annotations: owned fields refused, user fields kept across events, no-op edits record nothing."""

from __future__ import annotations

from typing import Any

import pytest

from loraledger.application.ledger import Ledger
from loraledger.domain.errors import OwnedFieldError, UnknownVersion
from tests.unit.application.support import (
    ACCEL,
    completed,
    event_count,
    history_types,
    lora_file,
    only_entry,
    start,
)

# -- annotations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("set_fields", "cleared"),
    [({"status": "completed"}, []), ({"loraUrl": "x"}, []), ({}, ["id"]), ({"isGood": True}, ["lastSynced"])],
)
def test_annotate_rejects_owned_fields(
    ledger: Ledger, set_fields: dict[str, Any], cleared: list[str]
) -> None:
    start(ledger)
    before = event_count(ledger)
    with pytest.raises(OwnedFieldError):
        ledger.annotations.annotate(1, "V9", set_fields, cleared)
    assert event_count(ledger) == before


def test_request_with_owned_extra_fields_is_rejected(ledger: Ledger) -> None:
    with pytest.raises(OwnedFieldError):
        ledger.start.request(1, "V9", parameters={}, fields={"status": "completed"})
    assert event_count(ledger) == 0


def test_annotated_fields_survive_later_events_and_can_be_cleared(ledger: Ledger) -> None:
    start(ledger, fields={"selectionSetId": "set-7"})
    ledger.annotations.annotate(1, "V9", {"isGood": True, "imageCount": 42, "description": "keeper"}, [])
    ledger.reports.apply(completed())
    ledger.sync.observe([lora_file()], url_base=ACCEL)

    entry = only_entry(ledger, "V9")
    assert (entry["selectionSetId"], entry["isGood"], entry["imageCount"], entry["description"]) == (
        "set-7",
        True,
        42,
        "keeper",
    )
    assert entry["status"] == "completed"

    ledger.annotations.annotate(1, "V9", {}, ["isGood"])
    assert "isGood" not in only_entry(ledger, "V9")
    assert history_types(ledger, "V9").count("Annotated") == 2


def test_annotating_the_same_values_again_records_nothing(ledger: Ledger) -> None:
    start(ledger)
    ledger.annotations.annotate(1, "V9", {"isGood": True}, [])
    before = event_count(ledger)

    ledger.annotations.annotate(1, "V9", {"isGood": True}, ["notThere"])

    assert event_count(ledger) == before


def test_annotating_an_unknown_version_is_unknown(ledger: Ledger) -> None:
    with pytest.raises(UnknownVersion):
        ledger.annotations.annotate(1, "V9", {"isGood": True}, [])
