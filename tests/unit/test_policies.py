"""The use cases' rules (domain/policies.py) on plain values: each returns a typed Decision or refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loraledger.domain import policies
from loraledger.domain.decisions import (
    Candidate,
    ImportOutcome,
    ReconcileOutcome,
    ReportOutcome,
    Rule,
    StartOutcome,
)
from loraledger.domain.entries import Status
from loraledger.domain.errors import JobIdTaken, VersionConflict, VersionNumbersExhausted
from loraledger.domain.legacy import RawEntry, plan_document
from loraledger.domain.matching import VersionFacts
from loraledger.domain.naming import ModelName
from loraledger.domain.observations import JobReport

JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
NOW = datetime(2025, 10, 13, 12, 0, tzinfo=UTC)


def facts(
    status: Status | None = Status.PENDING,
    *,
    id: str | None = JOB,
    job_ids: tuple[str, ...] = (JOB,),
    lora_url: str | None = None,
) -> VersionFacts:
    return VersionFacts(name="V9", id=id, status=status, lora_url=lora_url, job_ids=job_ids)


def report(job_id: str = JOB, model_name: str | None = "style_1_vV9") -> JobReport:
    return JobReport(job_id=job_id, status="COMPLETED", output_status="success", model_name=model_name)


# --------------------------------------------------------------------------- start


@pytest.mark.parametrize(
    ("names", "expected"), [([], "V1"), (["V2"], "V3"), (["V9", "V10", "V2"], "V11"), (["V1", "V1"], "V2")]
)
def test_the_next_version_is_one_above_the_highest(names: list[str], expected: str) -> None:
    assert policies.next_version_name(1, names) == expected


def test_after_the_highest_version_number_there_is_no_next_one() -> None:
    with pytest.raises(VersionNumbersExhausted, match=r"^style 1 already has V999999999: V999999999 is the"):
        policies.next_version_name(1, ["V3", "V999999999"])


def test_starting_a_new_version_decides_a_request_with_its_id() -> None:
    decision = policies.plan_start(1, "V9", None, "r-1")

    assert (decision.source, decision.rule, decision.outcome) == (
        "start",
        Rule.NEW_VERSION,
        StartOutcome.REQUESTED,
    )
    assert decision.input == {"request_id": "r-1"}
    assert decision.candidates == ()


def test_starting_a_failed_version_again_is_a_retry_that_names_the_failed_attempt() -> None:
    decision = policies.plan_start(1, "V9", facts(Status.FAILED), "r-2")

    assert decision.rule == Rule.RETRY_AFTER_FAILURE
    assert decision.candidates == (Candidate(JOB, "V9", Status.FAILED, True, "a new attempt"),)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (Status.PENDING, "^style 1 V9 is pending$"),
        (Status.COMPLETED, "^style 1 V9 is completed; a completed LoRA is never overwritten$"),
    ],
)
def test_starting_a_pending_or_completed_version_is_a_conflict(status: Status, message: str) -> None:
    with pytest.raises(VersionConflict, match=message):
        policies.plan_start(1, "V9", facts(status), "r-3")


def test_a_first_job_id_is_a_new_version_and_a_later_one_a_retry() -> None:
    first = policies.start_recorded(1, "r-1", JOB, facts(job_ids=()), "r-1")
    retry = policies.start_recorded(1, "r-2", "job-b-e1", facts(Status.FAILED), "r-2")

    assert first is not None and (first.rule, first.outcome) == (Rule.NEW_VERSION, StartOutcome.STARTED)
    assert first.input == {"request_id": "r-1", "job_id": JOB}
    assert retry is not None and retry.rule == Rule.RETRY_AFTER_FAILURE


def test_a_job_id_already_recorded_is_a_repeat() -> None:
    assert policies.start_recorded(1, "r-1", JOB, facts(), None) is None


def test_a_retry_answered_with_an_earlier_attempts_job_id_is_refused() -> None:
    with pytest.raises(JobIdTaken, match=f"^job {JOB} is an earlier attempt of style 1 V9$"):
        policies.start_recorded(1, "r-2", JOB, facts(Status.PENDING), "r-2")


def test_a_refusal_fails_only_the_attempt_still_waiting_for_runpod() -> None:
    refused = policies.start_refused("r-1", "r-1", Status.PENDING)

    assert refused is not None
    assert (refused.rule, refused.outcome, refused.input) == (
        Rule.START_REFUSED,
        StartOutcome.FAILED,
        {"request_id": "r-1"},
    )
    assert policies.start_refused("r-1", None, Status.PENDING) is None  # its job id was recorded
    assert policies.start_refused("r-1", "r-2", Status.PENDING) is None  # another start since
    assert policies.start_refused("r-1", "r-1", Status.COMPLETED) is None  # completed meanwhile


# --------------------------------------------------------------------------- job reports


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("style_1_vV9", ModelName(1, "V9")),
        ("style_1_vV9.safetensors", ModelName(1, "V9")),
        ("style_12_v3", ModelName(12, "V3", "style_12_v3")),
        (None, None),
        ("", None),
        ("sdxl_base", None),
        ("style_0_vV1", None),
    ],
)
def test_a_model_name_names_a_version_or_nothing(model_name: str | None, expected: ModelName | None) -> None:
    assert policies.model_of(model_name) == expected


def test_a_known_job_matches_exactly_or_by_its_base_id() -> None:
    exact = policies.match_by_job(report(), JOB, facts())
    suffix = policies.match_by_job(report(JOB[:-3]), JOB, facts())

    assert (exact.rule, exact.why) == (Rule.JOB_ID_EXACT, f"job id {JOB}")
    assert (suffix.rule, suffix.why) == (Rule.JOB_ID_SUFFIX, f"job id {JOB} ~ {JOB[:-3]}")
    assert exact.version == facts()


def test_an_unknown_job_matches_by_model_name_or_is_unmatched() -> None:
    model = ModelName(1, "V9")
    found = policies.match_by_model(report("other"), model, facts())
    missing = policies.match_by_model(report("other"), model, None)
    nameless = policies.match_by_model(report("other", None), None, None)

    assert (found.rule, found.why) == (Rule.MODEL_NAME, "model name style_1_vV9, job other not known")
    assert (missing.rule, missing.version) == (Rule.UNMATCHED, None)
    assert missing.why == "job other not known and style 1 has no V9"
    assert (nameless.rule, nameless.why) == (Rule.UNMATCHED, "job other not known, no model name")


def test_a_parked_report_is_matched_to_the_version_its_start_named() -> None:
    match = policies.parked_match(facts())

    assert (match.rule, match.version) == (Rule.PARKED_APPLIED, facts())


@pytest.mark.parametrize(
    ("outcome", "known", "adopts"),
    [
        (ReportOutcome.COMPLETE, False, True),
        (ReportOutcome.FAIL, False, True),
        (ReportOutcome.COMPLETE, True, False),
        (ReportOutcome.REPEAT, False, False),
        (ReportOutcome.IGNORE, False, False),
    ],
)
def test_a_report_that_ends_a_version_makes_its_unknown_job_known(
    outcome: ReportOutcome, known: bool, adopts: bool
) -> None:
    assert policies.adopts_job(outcome, known) is adopts


# --------------------------------------------------------------------------- import

SYNCED = {"id": "style_1_vV8", "name": "style_1_vV8.safetensors", "status": "completed", "loraUrl": "u"}
PENDING = {"id": JOB, "name": "V8", "status": "pending", "parameters": {"a": 1}}


def test_a_legacy_id_is_kept_as_text() -> None:
    assert policies.raw_id({"id": "x"}) == "x"
    assert policies.raw_id({}) is None
    assert policies.raw_id({"id": 7}) == "7"
    assert policies.raw_id({"id": {"_type_": "uuid_hex"}}) == '{"_type_":"uuid_hex"}'


def test_entries_already_recorded_are_not_recorded_again() -> None:
    (group,) = plan_document(1, [SYNCED, PENDING]).groups
    primary, merged = group.primary, group.merged[0][0]

    assert policies.entries_to_record(group, frozenset()) == [(primary, Rule.IMPORTED), group.merged[0]]
    assert policies.entries_to_record(group, frozenset({primary.fingerprint})) == [group.merged[0]]
    assert policies.entries_to_record(group, frozenset({primary.fingerprint, merged.fingerprint})) == []


def test_an_imported_version_names_the_kept_entry_and_the_merged_ones() -> None:
    (group,) = plan_document(1, [SYNCED, PENDING]).groups

    decision = policies.import_created(group, "a.json")

    assert (decision.source, decision.rule, decision.outcome) == (
        "import",
        Rule.MERGED_FILE_NAME,
        ImportOutcome.IMPORTED,
    )
    assert decision.input == {"source": "a.json", "position": 2}
    assert [(c.id, c.taken, c.why) for c in decision.candidates] == [
        (JOB, True, "kept: has the job id and parameters"),
        ("style_1_vV8", False, "merged into the kept entry"),
    ]
    assert decision.notes == ()


def test_a_single_entry_read_from_a_file_name_says_how_it_was_read() -> None:
    (group,) = plan_document(1, [SYNCED]).groups

    decision = policies.import_created(group, "a.json")

    assert decision.rule == Rule.IMPORTED
    assert [c.why for c in decision.candidates] == ["the only entry"]
    assert decision.notes == ("name 'style_1_vV8.safetensors' read as V8",)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [(Rule.IMPORTED, Rule.MERGED_INTO_RECORDED), (Rule.MERGED_SAME_JOB, Rule.MERGED_SAME_JOB)],
)
def test_an_entry_merged_into_a_recorded_version_keeps_its_grouping_rule(rule: str, expected: str) -> None:
    raw = RawEntry(3, {"id": 5, "name": "v9", "status": "failed"})

    decision = policies.import_merged(facts(), raw, rule, "b.json")

    assert (decision.rule, decision.outcome, decision.input) == (
        expected,
        ImportOutcome.MERGED,
        {"source": "b.json", "position": 3},
    )
    assert decision.candidates == (
        Candidate(JOB, "V9", Status.PENDING, True, "kept entry"),
        Candidate("5", "v9", "failed", False, "merged in"),
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (facts(), JOB),
        (facts(id=None), None),
        (facts(id="style_1_vV9", job_ids=()), None),
        (facts(job_ids=()), None),
    ],
)
def test_only_an_imported_attempts_job_id_is_indexed(version: VersionFacts, expected: str | None) -> None:
    assert policies.job_to_index(version, "style_1_vV9") == expected


# --------------------------------------------------------------------------- annotations


def test_an_edit_changes_only_what_differs_and_clears_only_what_is_there() -> None:
    entry: dict[str, Any] = {"isGood": 1, "note": "a", "count": 3}

    changes, cleared = policies.annotation_changes(
        entry, {"isGood": True, "note": "a", "count": 4, "new": None}, ["note", "missing", "note"]
    )

    assert changes == {"isGood": True, "count": 4, "new": None}  # 1 and true are different JSON
    assert cleared == ["note"]


# --------------------------------------------------------------------------- reconcile


def test_an_attempt_started_at_its_entry_timestamp_or_just_now() -> None:
    assert policies.attempt_started_at({"timestamp": "2025-10-13T10:00:00.000Z"}, NOW) == NOW - timedelta(
        hours=2
    )
    assert policies.attempt_started_at({}, NOW) == NOW
    assert policies.attempt_started_at({"timestamp": "yesterday"}, NOW) == NOW
    assert policies.attempt_started_at({"timestamp": 5}, NOW) == NOW


@pytest.mark.parametrize(
    ("status", "started", "overdue"),
    [
        (Status.PENDING, NOW - timedelta(minutes=15), True),
        (Status.PENDING, NOW - timedelta(minutes=14, seconds=59), False),
        (Status.FAILED, NOW - timedelta(hours=5), False),
        (Status.COMPLETED, NOW - timedelta(hours=5), False),
    ],
)
def test_only_a_pending_attempt_older_than_the_age_is_asked_about(
    status: Status, started: datetime, overdue: bool
) -> None:
    assert policies.is_overdue(facts(status), started, NOW, timedelta(minutes=15)) is overdue


def test_runpod_is_asked_about_a_job_id_never_about_a_model_name() -> None:
    assert policies.job_to_ask(facts(), "style_1_vV9") == JOB
    assert policies.job_to_ask(facts(id="style_1_vV9"), "style_1_vV9") is None
    assert policies.job_to_ask(facts(id=None), "style_1_vV9") is None


GRACE = timedelta(hours=1)


def test_an_attempt_runpod_no_longer_knows_fails_when_its_age_reaches_the_grace() -> None:
    failure = policies.stale_failure(facts(), JOB, GRACE, GRACE)

    assert failure is not None
    assert failure.reason == f"RunPod no longer knows job {JOB} (expired before its end was reported)"
    decision = failure.decision
    assert (decision.source, decision.rule, decision.outcome, decision.input) == (
        "reconcile",
        Rule.NOT_FOUND_AFTER_GRACE,
        ReconcileOutcome.FAIL,
        {"job_id": JOB},
    )
    assert decision.candidates == (Candidate(JOB, "V9", Status.PENDING, True, failure.reason),)


def test_an_attempt_just_under_the_grace_waits() -> None:
    assert policies.stale_failure(facts(), JOB, GRACE - timedelta(microseconds=1), GRACE) is None
    assert policies.stale_failure(facts(id="style_1_vV9"), None, GRACE - timedelta(seconds=1), GRACE) is None


def test_a_request_never_confirmed_fails_with_its_own_rule() -> None:
    failure = policies.stale_failure(facts(id="style_1_vV9", job_ids=()), None, GRACE, GRACE)

    assert failure is not None
    assert (
        failure.reason == "the request was never confirmed by RunPod (the service stopped before it answered)"
    )
    assert (failure.decision.rule, failure.decision.input) == (
        Rule.SUBMISSION_NEVER_CONFIRMED,
        {"job_id": None},
    )


@pytest.mark.parametrize(
    "version",
    [facts(Status.COMPLETED), facts(Status.FAILED), facts(id="job-b-e1", job_ids=(JOB, "job-b-e1"))],
    ids=["completed meanwhile", "failed meanwhile", "another attempt started"],
)
def test_an_attempt_something_else_ended_or_replaced_is_not_failed(version: VersionFacts) -> None:
    assert policies.stale_failure(version, JOB, 2 * GRACE, GRACE) is None
