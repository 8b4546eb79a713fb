"""The pages' reads: a version's timeline, a style's file at an earlier time, finding a version."""

from __future__ import annotations

from datetime import UTC, datetime

from loraledger.application.ledger import Ledger
from loraledger.application.queries import Located
from loraledger.domain.entry_changes import Change
from tests.unit.application.support import JOB, JOB_BASE, PLAIN, PREFIX, completed, lora_file, start


def test_the_timeline_has_the_entry_after_each_event_and_what_each_changed(ledger: Ledger) -> None:
    start(ledger)
    ledger.reports.apply(completed())

    steps = ledger.queries.timeline(1, "V9")

    assert [type(step.event).__name__ for step in steps] == [
        "VersionRegistered",
        "TrainingRequested",
        "TrainingStarted",
        "TrainingCompleted",
    ]
    assert steps[-1].entry is not None and steps[-1].entry["status"] == "completed"
    completion = {change.field: change for change in steps[-1].changes}
    assert completion["status"].change == Change.CHANGED
    assert (completion["status"].before, completion["status"].after) == ("pending", "completed")
    assert completion["completedAt"].change == Change.ADDED
    assert steps[2].entry is not None and steps[2].entry["id"] == JOB


def test_a_repeated_webhook_is_a_step_that_changes_nothing(ledger: Ledger) -> None:
    start(ledger)
    ledger.reports.apply(completed())
    ledger.reports.apply(completed())

    last = ledger.queries.timeline(1, "V9")[-1]

    assert type(last.event).__name__ == "WebhookRepeated"
    assert last.changes == []


def test_the_file_at_an_earlier_time_has_the_versions_and_values_of_then(ledger: Ledger) -> None:
    start(ledger, "V1", job_id="job-1")
    between = datetime.now(UTC)
    ledger.reports.apply(completed("job-1", model="style_1_vV1"))
    ledger.sync.observe([lora_file("style_1_vV2")], url_base=PLAIN)

    then = ledger.queries.entries_at(1, between)
    before_anything = ledger.queries.entries_at(1, datetime(2000, 1, 1, tzinfo=UTC))

    assert [(entry["name"], entry["status"]) for entry in then] == [("V1", "pending")]
    assert before_anything == []


def test_a_job_id_with_or_without_its_suffix_finds_its_version(ledger: Ledger) -> None:
    start(ledger)

    assert ledger.queries.locate(JOB) == Located(1, "V9", "job id")
    assert ledger.queries.locate(f"  {JOB_BASE} ") == Located(1, "V9", "job id")


def test_a_model_name_key_or_url_finds_its_version_legacy_spellings_included(ledger: Ledger) -> None:
    ledger.sync.observe([lora_file("style_1_vV3")], url_base=PLAIN)

    assert ledger.queries.locate("style_1_vV3") == Located(1, "V3", "model name")
    assert ledger.queries.locate("style_1_v3") == Located(1, "V3", "model name")
    assert ledger.queries.locate(f"{PREFIX}style_1_vV3.safetensors") == Located(1, "V3", "S3 key")
    assert ledger.queries.locate(f"{PLAIN}{PREFIX}style_1_vV3.safetensors?x=1") == Located(
        1, "V3", "LoRA URL"
    )


def test_text_naming_no_recorded_version_finds_nothing(ledger: Ledger) -> None:
    ledger.sync.observe([lora_file("style_1_vV3")], url_base=PLAIN)

    for text in (
        "",
        "   ",
        "style_1_vV4",
        "style_2_vV3",
        "no-such-job",
        "https://x/",
        "x" * 5000,
        "../..",
        "https://[::1",
    ):
        assert ledger.queries.locate(text) is None, text


def test_a_job_reported_before_its_version_is_known_counts_its_parked_reports(ledger: Ledger) -> None:
    ledger.reports.apply(completed("job-unknown-1", model=None))
    ledger.reports.apply(completed("job-unknown-1", model=None))

    assert ledger.queries.locate("job-unknown-1") is None
    assert ledger.queries.parked_reports("job-unknown-1") == 2
    assert ledger.queries.parked_reports("job-never-seen") == 0
