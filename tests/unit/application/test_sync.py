"""S3 sync: re-syncs, ETags, legacy spellings, skipped keys, never a second entry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from eventsourcing.domain import Aggregate

from loraledger.application import sync as sync_module
from loraledger.application.ledger import Ledger, LedgerConfig, LedgerStore
from loraledger.domain.decisions import Rule
from loraledger.domain.observations import LoraObject
from loraledger.domain.training_version import TrainingVersion
from loraledger.projections.training_versions import render_document
from tests.unit.application.support import (
    ACCEL,
    PARAMETERS,
    PLAIN,
    PREFIX,
    T0,
    Clock,
    completed,
    entries,
    event_count,
    history_types,
    iso,
    lora_file,
    only_entry,
    start,
)

# -- S3 sync --------------------------------------------------------------------------------------


def test_resync_with_the_same_etags_records_no_events(ledger: Ledger) -> None:
    files = [lora_file("style_1_vV9"), lora_file("style_1_vV8"), lora_file("style_2_vV1")]
    first = ledger.sync.observe(files, url_base=PLAIN)
    assert (first.created, first.events) == (3, 9)  # 3 versions x 1 event + 2 style indexes x 3
    before = event_count(ledger)

    again = ledger.sync.observe(files, url_base=PLAIN)

    assert (again.scanned, again.unchanged, again.created, again.events) == (3, 3, 0, 0)
    assert again.decisions == []
    assert event_count(ledger) == before


def test_resync_with_a_new_etag_is_matched_again(ledger: Ledger) -> None:
    ledger.sync.observe([lora_file(etag='"a"')], url_base=PLAIN)
    again = ledger.sync.observe([lora_file(etag='"b"')], url_base=PLAIN)

    assert (again.unchanged, again.matched_synced) == (0, 1)
    assert again.decisions[0].rule == Rule.SYNCED_BY_URL
    assert history_types(ledger, "V9") == ["CreatedFromS3", "LoraSynced"]


def test_legacy_spelled_key_creates_an_entry_whose_id_is_the_canonical_model_name(
    ledger: Ledger, clock: Clock
) -> None:
    modified = datetime(2025, 9, 1, 12, 0, 0, 5000, tzinfo=UTC)
    synced_at = iso(clock.now)
    report = ledger.sync.observe(
        [LoraObject(f"{PREFIX}style_2_v3.safetensors", '"e"', 10, modified)], url_base=PLAIN
    )

    assert report.created == 1
    assert list(report.decisions[0].notes) == ["legacy spelling 'style_2_v3' read as 'style_2_vV3'"]
    assert entries(ledger, 2) == [
        {
            "id": "style_2_vV3",
            "name": "V3",
            "description": "Synced from S3",
            "timestamp": "2025-09-01T12:00:00.005Z",
            "parameters": {},
            "status": "completed",
            "loraUrl": f"{PLAIN}{PREFIX}style_2_v3.safetensors",
            "lastSynced": synced_at,
        }
    ]
    assert history_types(ledger, "V3", 2) == ["CreatedFromS3"]


def test_sync_reports_skipped_keys_with_their_reason_and_only_style(ledger: Ledger) -> None:
    objects = [
        lora_file("style_1_vV9"),
        lora_file("style_2_vV1"),
        LoraObject(f"{PREFIX}style_1_vV9 (1).safetensors", '"x"', 1, T0),
        LoraObject(f"{PREFIX}readme.txt", '"y"', 1, T0),
    ]
    report = ledger.sync.observe(objects, url_base=PLAIN, only_style=2)

    assert (report.scanned, report.created) == (4, 1)
    assert [s["key"] for s in report.skipped] == [
        f"{PREFIX}style_1_vV9 (1).safetensors",
        f"{PREFIX}readme.txt",
    ]
    assert all(s["reason"] for s in report.skipped)
    assert ledger.queries.version_names(1) == []
    assert ledger.queries.version_names(2) == ["V1"]


EMPTY_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'  # S3's ETag of 0 bytes


def test_an_empty_file_neither_completes_a_pending_version_nor_creates_one(ledger: Ledger) -> None:
    start(ledger, "V5")
    before = event_count(ledger)
    files = [lora_file("style_1_vV5", EMPTY_ETAG, size=0), lora_file("style_1_vV6", EMPTY_ETAG, size=0)]

    report = ledger.sync.observe(files, url_base=PLAIN)

    assert (report.scanned, report.matched_pending, report.created) == (2, 0, 0)
    assert [s["key"] for s in report.skipped] == [f.key for f in files]
    assert all("0 bytes" in s["reason"] for s in report.skipped)
    assert [d.rule for d in report.decisions] == [Rule.EMPTY_FILE, Rule.EMPTY_FILE]
    assert ledger.queries.version_names(1) == ["V5"]
    assert only_entry(ledger, "V5")["status"] == "pending"
    # What is recorded is the skips alone: once in the list, and on the version V5 names.
    assert [s.key for s in ledger.queries.skipped_files()] == [f.key for f in files]
    assert history_types(ledger, "V5")[-1] == "LoraSkipped"
    assert event_count(ledger) == before + report.events


def test_an_empty_file_is_reported_again_on_every_sync_until_the_real_file_lands(ledger: Ledger) -> None:
    start(ledger, "V5")
    empty = lora_file("style_1_vV5", EMPTY_ETAG, size=0)
    ledger.sync.observe([empty], url_base=PLAIN)

    again = ledger.sync.observe([empty], url_base=PLAIN)
    assert (again.unchanged, len(again.skipped), again.events) == (0, 1, 0)

    landed = ledger.sync.observe([lora_file("style_1_vV5", '"real"')], url_base=PLAIN)
    assert landed.matched_pending == 1
    assert only_entry(ledger, "V5")["status"] == "completed"


def test_a_style_whose_only_file_is_empty_gets_no_version_only_the_skip_record(ledger: Ledger) -> None:
    report = ledger.sync.observe([lora_file("style_3_vV1", EMPTY_ETAG, size=0)], url_base=PLAIN)

    assert (report.created, len(report.skipped)) == (0, 1)
    assert report.styles == set()
    assert ledger.queries.version_names(3) == []
    (skip,) = ledger.queries.skipped_files()
    assert (skip.style_id, skip.version, skip.rule) == (3, "V1", Rule.EMPTY_FILE)
    again = ledger.sync.observe([lora_file("style_3_vV1", EMPTY_ETAG, size=0)], url_base=PLAIN)
    assert (again.events, len(again.skipped)) == (0, 1)


def test_sync_never_creates_a_second_entry_for_a_requested_version(ledger: Ledger) -> None:
    ledger.start.request(1, "V9", parameters=PARAMETERS)
    ledger.sync.observe([lora_file("style_1_vV9"), lora_file("style_1_v9", '"2"')], url_base=PLAIN)

    assert [e["name"] for e in entries(ledger)] == ["V9"]
    assert only_entry(ledger, "V9")["parameters"] == PARAMETERS


def test_a_legacy_spelled_duplicate_file_never_takes_over_the_lora_url(ledger: Ledger) -> None:
    start(ledger)
    ledger.reports.apply(completed())  # loraUrl: plain URL of style_1_vV9.safetensors
    ledger.sync.observe([lora_file("style_1_v9")], url_base=ACCEL)

    assert only_entry(ledger, "V9")["loraUrl"].endswith("/style_1_vV9.safetensors")


# -- transactions of many styles -----------------------------------------------------------------


class FailingSecondSave(LedgerStore):
    """A store whose second save fails, as a run killed part-way would stop."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.saves = 0

    def save_all(self, *aggregates: Aggregate | None) -> int:
        self.saves += 1
        if self.saves == 2:
            raise OSError("the run stops here")
        return super().save_all(*aggregates)


def test_a_sync_saves_many_styles_per_transaction_and_a_stopped_run_is_finished_by_the_next(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    monkeypatch.setattr(sync_module, "SYNC_BATCH_FILES", 4)
    env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    ledger = Ledger.open(env, config=LedgerConfig(PLAIN, PREFIX), clock=clock, store_class=FailingSecondSave)
    files = [lora_file(f"style_{style}_vV{n}") for style in range(1, 7) for n in (1, 2)]

    with pytest.raises(OSError, match="stops here"):
        ledger.sync.observe(files, url_base=PLAIN)
    assert [ledger.store.version_names(style) for style in range(1, 7)] == [["V2", "V1"]] * 2 + [[]] * 4

    again = ledger.sync.observe(files, url_base=PLAIN)

    assert (again.unchanged, again.created, again.styles) == (4, 8, {3, 4, 5, 6})
    assert [ledger.store.version_names(style) for style in range(1, 7)] == [["V2", "V1"]] * 6


def test_the_versions_a_sync_hands_on_render_as_the_stored_ones_do(ledger: Ledger) -> None:
    start(ledger, "V9")
    saved: dict[int, list[TrainingVersion]] = {}
    files = [lora_file("style_1_vV9"), lora_file("style_1_vV8"), lora_file("style_2_vV1")]

    ledger.sync.observe(files, url_base=PLAIN, on_saved=saved.__setitem__)

    assert sorted(saved) == [1, 2]
    for style_id, versions in saved.items():
        assert render_document(versions) == render_document(ledger.queries.style_versions(style_id))
