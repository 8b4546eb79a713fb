"""Every S3 file a sync passes over is recorded once per (key, ETag), with why (CONTRACT §12)."""

from __future__ import annotations

from loraledger.application.ledger import Ledger
from loraledger.domain.decisions import Rule
from loraledger.domain.skips import SkippedFile, SkippedFiles
from tests.unit.application.support import (
    PLAIN,
    PREFIX,
    Clock,
    completed,
    event_count,
    history_types,
    iso,
    lora_file,
    only_entry,
    start,
)

# The deployment's own bucket: V8's LoRA, its legacy-spelled twin, and two names that are no LoRA
# (V8 was trained, so its id is the RunPod job, not the model name the twin could match).
THEIR_FILES = [
    lora_file("style_1_vV8", '"v8"'),
    lora_file("style_1_v8", '"v8-legacy"'),
    lora_file("Style_2_VV9", '"odd-case"'),
    lora_file("style_1_vV13_final", '"final"'),
]


def trained_v8(ledger: Ledger) -> None:
    start(ledger, "V8")
    ledger.reports.apply(completed(model="style_1_vV8"), source="webhook")


def test_every_skipped_file_is_listed_with_its_reason_rule_and_the_version_it_names(
    ledger: Ledger, clock: Clock
) -> None:
    trained_v8(ledger)
    report = ledger.sync.observe(THEIR_FILES, url_base=PLAIN)

    listed = {skip.key: skip for skip in ledger.queries.skipped_files()}
    assert set(listed) == {
        PREFIX + n + ".safetensors" for n in ("style_1_v8", "Style_2_VV9", "style_1_vV13_final")
    }
    # The list says what the report said, and more: the ETag, the rule, the version, when.
    assert {s["key"]: s["reason"] for s in report.skipped} == {k: s.reason for k, s in listed.items()}
    legacy = listed[PREFIX + "style_1_v8.safetensors"]
    assert (legacy.etag, legacy.rule, legacy.style_id, legacy.version) == (
        '"v8-legacy"',
        Rule.OTHER_FILE_OF_VERSION,
        1,
        "V8",
    )
    assert "one version has one LoRA" in legacy.reason and legacy.skipped_at == iso(clock.now)
    odd = listed[PREFIX + "Style_2_VV9.safetensors"]
    assert (odd.rule, odd.style_id, odd.version, odd.source) == (Rule.NOT_A_LORA_NAME, None, None, "s3-sync")


def test_a_file_passed_over_for_a_version_with_its_lora_is_in_that_versions_history(ledger: Ledger) -> None:
    trained_v8(ledger)
    ledger.sync.observe(THEIR_FILES, url_base=PLAIN)

    assert history_types(ledger, "V8")[-2:] == ["LoraSynced", "LoraSkipped"]
    (skipped,) = [e for e in ledger.queries.history(1, "V8") if type(e).__name__ == "LoraSkipped"]
    assert skipped.key == PREFIX + "style_1_v8.safetensors"  # type: ignore[attr-defined]
    assert skipped.decision["rule"] == Rule.OTHER_FILE_OF_VERSION  # type: ignore[attr-defined]
    candidate = skipped.decision["candidates"][0]  # type: ignore[attr-defined]
    assert (candidate["name"], candidate["taken"]) == ("V8", False)
    assert only_entry(ledger, "V8")["loraUrl"].endswith("/style_1_vV8.safetensors")  # the entry is as it was


def test_a_resync_records_nothing_new_and_its_report_stays_as_it_was(ledger: Ledger, clock: Clock) -> None:
    trained_v8(ledger)
    first = ledger.sync.observe(THEIR_FILES, url_base=PLAIN)
    recorded = event_count(ledger)
    listed = ledger.queries.skipped_files()
    clock.advance(hours=1)

    again = ledger.sync.observe(THEIR_FILES, url_base=PLAIN)

    assert again.events == 0 and event_count(ledger) == recorded
    assert ledger.queries.skipped_files() == listed
    # The report is what it always was: a key that names no LoRA is reported on every sync, a
    # recorded ETag is unchanged.
    assert len(first.skipped) == 3
    assert [s["key"] for s in again.skipped] == [
        PREFIX + "Style_2_VV9.safetensors",
        PREFIX + "style_1_vV13_final.safetensors",
    ]
    assert again.unchanged == 2


def test_a_skipped_key_with_a_new_etag_is_recorded_again(ledger: Ledger, clock: Clock) -> None:
    trained_v8(ledger)
    ledger.sync.observe(THEIR_FILES, url_base=PLAIN)
    clock.advance(minutes=5)

    ledger.sync.observe([*THEIR_FILES[:3], lora_file("style_1_vV13_final", '"final-2"')], url_base=PLAIN)

    finals = [s for s in ledger.queries.skipped_files() if s.key.endswith("vV13_final.safetensors")]
    assert [s.etag for s in finals] == ['"final"', '"final-2"']


def test_the_list_can_be_narrowed_to_one_style(ledger: Ledger) -> None:
    trained_v8(ledger)
    ledger.sync.observe([*THEIR_FILES, lora_file("style_3_vV1", '"empty"', size=0)], url_base=PLAIN)

    assert [s.key for s in ledger.queries.skipped_files(3)] == [PREFIX + "style_3_vV1.safetensors"]
    assert [s.version for s in ledger.queries.skipped_files(1)] == ["V8"]


def test_the_skip_list_records_each_key_and_etag_once() -> None:
    def skip(key: str, etag: str) -> SkippedFile:
        return SkippedFile(key, etag, "why", Rule.NOT_A_LORA_NAME, "s3-sync", None, None, "t")

    listed = SkippedFiles.open()
    assert not listed.has_new_skips
    assert [s.key for s in listed.record([skip("a", "1"), skip("a", "1"), skip("b", "1")])] == ["a", "b"]
    assert listed.record([skip("a", "1")]) == []
    assert [s.etag for s in listed.record([skip("a", "2")])] == ["2"]
    assert listed.has_new_skips and len(listed.listed()) == 3
