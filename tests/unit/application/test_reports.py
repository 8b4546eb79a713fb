"""Job reports (webhooks): matching by job id and model name, parking, repeats, stale attempts."""

from __future__ import annotations

import pytest

from loraledger.application.ledger import Ledger
from loraledger.domain.decisions import Rule
from loraledger.domain.errors import UnknownVersion
from loraledger.domain.legacy import plan_document
from loraledger.domain.observations import JobReport
from tests.unit.application.support import (
    ACCEL,
    JOB,
    JOB_BASE,
    PARAMETERS,
    PLAIN,
    PREFIX,
    T0,
    Clock,
    completed,
    entries,
    event_count,
    failed,
    history_types,
    iso,
    lora_file,
    only_entry,
    start,
)

# -- the design note's Testing flow ---------------------------------------------------------------


def test_design_note_flow_gives_one_completed_v9_with_url_and_parameters(
    ledger: Ledger, clock: Clock
) -> None:
    requested = iso(clock.now)
    request = ledger.start.request(1, "V9", parameters=PARAMETERS, description="more steps")
    assert (request.style_id, request.version_name, request.model_name) == (1, "V9", "style_1_vV9")
    assert ledger.start.record_start(request, JOB).result == "applied"
    completed_at = clock.advance(minutes=25)
    assert ledger.reports.apply(completed()).result == "applied"
    synced_at = clock.advance(hours=8)
    sync = ledger.sync.observe([lora_file()], url_base=PLAIN)

    assert (sync.matched_pending, sync.matched_synced, sync.created) == (0, 1, 0)
    assert entries(ledger) == [
        {
            "id": JOB,
            "name": "V9",
            "description": "more steps",
            "timestamp": requested,
            "parameters": PARAMETERS,
            "status": "completed",
            "loraUrl": f"{PLAIN}{PREFIX}style_1_vV9.safetensors",
            "completedAt": completed_at,
            "lastSynced": synced_at,
        }
    ]
    assert history_types(ledger, "V9") == [
        "VersionRegistered",
        "TrainingRequested",
        "TrainingStarted",
        "TrainingCompleted",
        "LoraSynced",
    ]


# -- sync before webhook --------------------------------------------------------------------------


def test_sync_before_webhook_completes_first_then_webhook_records_completion_once(
    ledger: Ledger, clock: Clock
) -> None:
    start(ledger)
    synced_at = clock.advance(minutes=30)
    sync = ledger.sync.observe([lora_file()], url_base=ACCEL)
    assert (sync.matched_pending, sync.created) == (1, 0)
    assert sync.decisions[0].rule == Rule.PENDING_BY_NAME
    after_sync = only_entry(ledger, "V9")
    assert after_sync["status"] == "completed"
    assert after_sync["loraUrl"] == f"{ACCEL}{PREFIX}style_1_vV9.safetensors"
    assert "completedAt" not in after_sync

    completed_at = clock.advance(minutes=1)
    result = ledger.reports.apply(completed(url=f"{PLAIN}{PREFIX}style_1_vV9.safetensors"))

    assert result.result == "applied"
    assert entries(ledger) == [
        {
            "id": JOB,
            "name": "V9",
            "timestamp": iso(T0),
            "parameters": PARAMETERS,
            "status": "completed",
            "loraUrl": f"{ACCEL}{PREFIX}style_1_vV9.safetensors",  # never downgraded
            "completedAt": completed_at,
            "lastSynced": synced_at,
        }
    ]
    assert history_types(ledger, "V9")[-2:] == ["LoraSynced", "TrainingCompleted"]


def test_webhook_after_plain_sync_upgrades_to_the_accelerated_url(ledger: Ledger) -> None:
    start(ledger)
    ledger.sync.observe([lora_file()], url_base=PLAIN)
    ledger.reports.apply(
        completed(url=f"https://s3-accelerate.amazonaws.com/bucket/{PREFIX}style_1_vV9.safetensors")
    )

    assert only_entry(ledger, "V9")["loraUrl"] == f"{ACCEL}{PREFIX}style_1_vV9.safetensors"


# -- webhook before start -------------------------------------------------------------------------


def test_webhook_before_start_is_parked_and_applied_when_the_start_is_recorded(
    ledger: Ledger, clock: Clock
) -> None:
    request = ledger.start.request(1, "V9", parameters=PARAMETERS)
    before = ledger.reports.apply(completed(model=None))
    assert before.result == "unmatched"
    assert before.decisions[0].rule == Rule.UNMATCHED
    assert only_entry(ledger, "V9")["status"] == "pending"

    completed_at = clock.advance(seconds=5)
    started = ledger.start.record_start(request, JOB)

    assert started.result == "applied"
    assert [d.rule for d in started.decisions] == [Rule.NEW_VERSION, Rule.PARKED_APPLIED]
    entry = only_entry(ledger, "V9")
    assert (entry["id"], entry["status"], entry["completedAt"]) == (JOB, "completed", completed_at)
    assert entry["loraUrl"] == f"{PLAIN}{PREFIX}style_1_vV9.safetensors"  # derived from the model name
    last = ledger.queries.history(1, "V9")[-1]
    assert type(last).__name__ == "TrainingCompleted"
    assert last.decision["rule"] == Rule.PARKED_APPLIED  # type: ignore[attr-defined]


def test_webhook_for_a_version_not_yet_requested_is_parked_then_applied_on_start(ledger: Ledger) -> None:
    assert ledger.reports.apply(completed()).result == "unmatched"
    with pytest.raises(UnknownVersion):
        ledger.queries.history(1, "V9")

    started = ledger.start.record_start(ledger.start.request(1, "V9", parameters={}), JOB)

    assert [d.rule for d in started.decisions][-1] == Rule.PARKED_APPLIED
    assert only_entry(ledger, "V9")["status"] == "completed"
    # the parked report is applied once: a later start of the same job changes nothing
    assert ledger.reports.apply(completed()).result == "repeat"
    assert history_types(ledger, "V9").count("TrainingCompleted") == 1


def test_parked_webhook_is_applied_when_an_import_brings_the_pending_job(ledger: Ledger) -> None:
    assert ledger.reports.apply(failed()).result == "unmatched"
    pending = {"id": JOB, "name": "V9", "status": "pending", "parameters": PARAMETERS}

    ledger.imports.import_plan(plan_document(1, [pending]), "training_versions.json")

    entry = only_entry(ledger, "V9")
    assert (entry["status"], entry["error"]) == ("failed", "CUDA out of memory")
    assert ledger.queries.history(1, "V9")[-1].decision["rule"] == Rule.PARKED_APPLIED  # type: ignore[attr-defined]


# -- repeats, suffixes, stale attempts ------------------------------------------------------------


def test_repeated_webhooks_are_recorded_as_repeats_never_as_second_completions(
    ledger: Ledger, clock: Clock
) -> None:
    start(ledger)
    completed_at = clock.advance(minutes=1)
    results = [ledger.reports.apply(completed()).result]
    clock.advance(minutes=1)
    results += [ledger.reports.apply(completed()).result for _ in range(2)]

    assert results == ["applied", "repeat", "repeat"]
    types = history_types(ledger, "V9")
    assert types.count("TrainingCompleted") == 1
    assert types.count("WebhookRepeated") == 2
    assert only_entry(ledger, "V9")["completedAt"] == completed_at


def test_failure_webhook_after_a_sync_completed_the_version_is_ignored(ledger: Ledger) -> None:
    start(ledger)
    ledger.sync.observe([lora_file()], url_base=PLAIN)

    result = ledger.reports.apply(failed())

    assert (result.result, result.decisions[0].rule) == ("ignored", Rule.FAILURE_AFTER_COMPLETION)
    entry = only_entry(ledger, "V9")
    assert entry["status"] == "completed"
    assert "error" not in entry and "failedAt" not in entry
    assert history_types(ledger, "V9")[-1] == "WebhookIgnored"


def test_failure_webhook_for_a_job_whose_completion_was_recorded_is_a_repeat(ledger: Ledger) -> None:
    start(ledger)
    ledger.reports.apply(completed())

    assert ledger.reports.apply(failed()).result == "repeat"
    entry = only_entry(ledger, "V9")
    assert entry["status"] == "completed"
    assert "error" not in entry
    assert history_types(ledger, "V9")[-1] == "WebhookRepeated"


@pytest.mark.parametrize("reported", [JOB_BASE, JOB_BASE + "-e1", JOB_BASE + "-u3"])
def test_webhook_with_the_suffix_removed_or_changed_finds_the_job(ledger: Ledger, reported: str) -> None:
    start(ledger)
    result = ledger.reports.apply(completed(reported, model=None))

    assert result.result == "applied"
    assert result.decisions[0].rule == Rule.JOB_ID_SUFFIX
    assert only_entry(ledger, "V9")["id"] == JOB


def test_webhook_with_the_exact_job_id_names_the_exact_rule(ledger: Ledger) -> None:
    start(ledger)
    result = ledger.reports.apply(completed(model=None))

    assert result.decisions[0].rule == Rule.JOB_ID_EXACT


def test_webhook_of_an_unknown_job_found_by_model_name_adopts_the_job(ledger: Ledger) -> None:
    ledger.sync.observe([lora_file()], url_base=PLAIN)  # V9 first seen in S3
    result = ledger.reports.apply(completed("other-job-e1"))

    assert result.result == "applied"
    assert result.decisions[0].rule == Rule.MODEL_NAME
    assert only_entry(ledger, "V9")["id"] == "other-job-e1"
    assert ledger.reports.apply(completed("other-job-e1")).result == "repeat"


def test_webhook_of_an_earlier_failed_attempt_is_ignored_after_a_retry(ledger: Ledger) -> None:
    start(ledger, job_id="job-a-e1")
    ledger.reports.apply(failed("job-a-e1"))
    start(ledger, job_id="job-b-e1")

    result = ledger.reports.apply(completed("job-a-e1"))

    assert result.result == "ignored"
    assert result.decisions[0].rule == Rule.STALE_ATTEMPT
    entry = only_entry(ledger, "V9")
    assert (entry["id"], entry["status"]) == ("job-b-e1", "pending")


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_failure_webhook_fails_the_version_with_error_and_failed_at(
    ledger: Ledger, clock: Clock, status: str
) -> None:
    start(ledger)
    failed_at = clock.advance(minutes=3)
    assert ledger.reports.apply(failed(status=status, error=None)).result == "applied"

    entry = only_entry(ledger, "V9")
    assert (entry["status"], entry["error"], entry["failedAt"]) == (
        "failed",
        f"RunPod job ended {status}",
        failed_at,
    )
    assert "loraUrl" not in entry


def test_in_progress_report_records_nothing(ledger: Ledger) -> None:
    start(ledger)
    before = event_count(ledger)

    result = ledger.reports.apply(JobReport(job_id=JOB, status="IN_PROGRESS"))

    assert result.result == "running"
    assert event_count(ledger) == before
