"""Starting a training: names, conflicts, retries, RunPod's refusal, repeated starts."""

from __future__ import annotations

import pytest

from loraledger.application.ledger import Ledger
from loraledger.domain.decisions import Rule
from loraledger.domain.errors import JobIdTaken, VersionConflict, VersionNumbersExhausted
from loraledger.domain.naming import NameRejected
from tests.unit.application.support import (
    JOB,
    JOB_BASE,
    PARAMETERS,
    PLAIN,
    Clock,
    completed,
    event_count,
    failed,
    history_types,
    lora_file,
    only_entry,
    start,
)

# -- starting ---------------------------------------------------------------------------------


def test_requesting_a_pending_version_is_a_conflict(ledger: Ledger) -> None:
    ledger.start.request(1, "V9", parameters={})
    with pytest.raises(VersionConflict, match="V9 is pending"):
        ledger.start.request(1, "v9", parameters={})


def test_requesting_a_completed_version_is_a_conflict(ledger: Ledger) -> None:
    start(ledger)
    ledger.reports.apply(completed())
    with pytest.raises(VersionConflict, match="never overwritten"):
        ledger.start.request(1, "V9", parameters={})


def test_requesting_a_failed_version_again_is_a_retry(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    ledger.reports.apply(failed())
    retried_at = clock.advance(hours=1)

    request = ledger.start.request(1, "V9", parameters={"learning_rate": 0.0001})

    assert request.version_name == "V9"
    entry = only_entry(ledger, "V9")
    assert (entry["status"], entry["timestamp"], entry["parameters"]) == (
        "pending",
        retried_at,
        {"learning_rate": 0.0001},
    )
    assert "error" not in entry and "failedAt" not in entry
    assert ledger.queries.history(1, "V9")[-1].decision["rule"] == Rule.RETRY_AFTER_FAILURE  # type: ignore[attr-defined]


def test_default_version_name_is_the_next_v_n(ledger: Ledger) -> None:
    assert ledger.start.request(1, None, parameters={}).version_name == "V1"
    ledger.sync.observe([lora_file("style_1_vV9")], url_base=PLAIN)
    assert ledger.start.request(1, None, parameters={}).version_name == "V10"
    assert ledger.start.request(2, None, parameters={}).version_name == "V1"


def test_the_default_name_after_the_highest_version_number_is_a_conflict_that_says_why(
    ledger: Ledger,
) -> None:
    ledger.start.request(1, "V999999999", parameters={})
    before = event_count(ledger)

    with pytest.raises(VersionNumbersExhausted, match="V999999999 is the highest version number") as raised:
        ledger.start.request(1, None, parameters={})

    assert isinstance(raised.value, VersionConflict)  # HTTP 409: the request is fine, the style is full
    assert "give a version_name" in str(raised.value)
    assert event_count(ledger) == before
    assert ledger.start.request(1, "V7", parameters={}).version_name == "V7"  # a free name still works


@pytest.mark.parametrize("bad", ["V08", "8", "V0", "../V1"])
def test_requesting_a_malformed_version_name_is_rejected(ledger: Ledger, bad: str) -> None:
    with pytest.raises(NameRejected):
        ledger.start.request(1, bad, parameters={})
    assert event_count(ledger) == 0


def test_start_failure_leaves_the_version_failed_with_the_reason(ledger: Ledger, clock: Clock) -> None:
    request = ledger.start.request(1, "V9", parameters=PARAMETERS)
    failed_at = clock.advance(seconds=2)

    ledger.start.record_failure(request, "RunPod refused the request: 401 Unauthorized")

    entry = only_entry(ledger, "V9")
    assert (entry["status"], entry["error"], entry["failedAt"]) == (
        "failed",
        "RunPod refused the request: 401 Unauthorized",
        failed_at,
    )
    assert entry["parameters"] == PARAMETERS
    assert ledger.queries.history(1, "V9")[-1].decision["rule"] == Rule.START_REFUSED  # type: ignore[attr-defined]
    ledger.start.request(1, "V9", parameters={})  # a failed version may be started again


def test_start_failure_after_the_start_was_recorded_changes_nothing(ledger: Ledger) -> None:
    request = start(ledger)
    before = event_count(ledger)

    ledger.start.record_failure(request, "timeout")

    assert event_count(ledger) == before
    assert only_entry(ledger, "V9")["status"] == "pending"


def test_recording_the_same_start_twice_is_a_repeat(ledger: Ledger) -> None:
    request = start(ledger)
    assert ledger.start.record_start(request, JOB).result == "repeat"
    assert history_types(ledger, "V9").count("TrainingStarted") == 1


def test_a_start_answered_with_another_versions_job_id_is_refused_and_changes_nothing(
    ledger: Ledger,
) -> None:
    start(ledger, "V3", JOB)
    request = ledger.start.request(1, "V4", parameters={})
    before = event_count(ledger)

    with pytest.raises(JobIdTaken, match=f"job {JOB} already belongs to style 1 V3"):
        ledger.start.record_start(request, JOB)
    with pytest.raises(JobIdTaken):
        ledger.start.record_start(request, JOB_BASE + "-e7")  # the same job with another suffix

    assert event_count(ledger) == before
    assert only_entry(ledger, "V3")["id"] == JOB


def test_a_retry_answered_with_the_job_id_of_an_earlier_attempt_is_refused(ledger: Ledger) -> None:
    start(ledger, "V9", JOB)
    ledger.reports.apply(failed())
    retry = ledger.start.request(1, "V9", parameters={})

    with pytest.raises(JobIdTaken, match=f"job {JOB} is an earlier attempt of style 1 V9"):
        ledger.start.record_start(retry, JOB)

    ledger.start.record_failure(retry, "RunPod answered with an earlier attempt's job id")
    assert only_entry(ledger, "V9")["status"] == "failed"
