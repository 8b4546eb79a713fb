"""The aggregate's guards: a transition its state does not allow is refused and records nothing,
and none of them ever refuses what the rules decide."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loraledger.domain import policies
from loraledger.domain.decisions import Decision, ReportOutcome, Rule, StartOutcome, SyncOutcome
from loraledger.domain.errors import JobIdTaken, OwnedFieldError, TransitionRefused, VersionConflict
from loraledger.domain.matching import (
    JobMatch,
    ReportDecision,
    StyleCandidates,
    SyncDecision,
    decide_report,
    match_lora_file,
)
from loraledger.domain.naming import parse_lora_key
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.domain.training_version import TrainingVersion

AT = datetime(2025, 10, 13, 19, 36, 17, 724000, tzinfo=UTC)
JOB = "job-a-e1"
URL = "https://bucket.s3.amazonaws.com/m/style_1_vV9.safetensors"
FILE = LoraObject("m/style_1_vV9.safetensors", '"e"', 10, AT)


def start_decision(rule: str = Rule.NEW_VERSION) -> Decision:
    return Decision("start", rule, StartOutcome.REQUESTED)


def requested() -> TrainingVersion:
    version = TrainingVersion.register(1, "V9")
    version.request_training(
        request_id="r-1",
        requested_at=AT,
        parameters={},
        description=None,
        fields={},
        decision=start_decision(),
    )
    return version


def started(job_id: str = JOB) -> TrainingVersion:
    version = requested()
    version.record_start(request_id="r-1", job_id=job_id, decision=start_decision())
    return version


def report_decision(
    outcome: ReportOutcome, attempt: str | None = JOB, url: str | None = None
) -> ReportDecision:
    return ReportDecision(attempt, url, None, Decision("webhook", Rule.JOB_ID_EXACT, outcome))


def done(job_id: str = JOB) -> JobReport:
    return JobReport(job_id, "COMPLETED", "success")


def completed(url: str | None = URL) -> TrainingVersion:
    version = started()
    version.record_report(report_decision(ReportOutcome.COMPLETE, url=url), done(), AT)
    return version


def sync_decision(outcome: SyncOutcome) -> SyncDecision:
    return SyncDecision("V9", URL, Decision("s3-sync", Rule.CREATED, outcome))


Transition = Callable[[TrainingVersion], object]

REFUSED: list[tuple[str, Callable[[], TrainingVersion], Transition, type[Exception], str]] = [
    (
        "request while pending",
        requested,
        lambda v: v.request_training(
            request_id="r-2",
            requested_at=AT,
            parameters={},
            description=None,
            fields={},
            decision=start_decision(),
        ),
        VersionConflict,
        "^style 1 V9 is pending$",
    ),
    (
        "request when completed",
        completed,
        lambda v: v.request_training(
            request_id="r-2",
            requested_at=AT,
            parameters={},
            description=None,
            fields={},
            decision=start_decision(),
        ),
        VersionConflict,
        "never overwritten",
    ),
    (
        "request with an owned field",
        lambda: TrainingVersion.register(1, "V9"),
        lambda v: v.request_training(
            request_id="r-1",
            requested_at=AT,
            parameters={},
            description=None,
            fields={"status": "completed"},
            decision=start_decision(),
        ),
        OwnedFieldError,
        "^fields owned by the service cannot be set: status$",
    ),
    (
        "start never requested",
        lambda: TrainingVersion.register(1, "V9"),
        lambda v: v.record_start(request_id="r-1", job_id=JOB, decision=start_decision()),
        TransitionRefused,
        "no start was requested",
    ),
    (
        "start with a job already an attempt",
        started,
        lambda v: v.record_start(request_id="r-1", job_id=JOB, decision=start_decision()),
        TransitionRefused,
        f"job {JOB} is already an attempt",
    ),
    (
        "a second completion of a job",
        completed,
        lambda v: v.record_report(report_decision(ReportOutcome.COMPLETE), done(), AT),
        TransitionRefused,
        "cannot complete",
    ),
    (
        "a failure over a completed LoRA",
        lambda: completed(URL),
        lambda v: v.record_report(
            report_decision(ReportOutcome.FAIL, attempt="job-b-e1"), done("job-b-e1"), AT
        ),
        TransitionRefused,
        "cannot fail",
    ),
    (
        "a failure of a reported job",
        lambda: completed(None),
        lambda v: v.record_report(report_decision(ReportOutcome.FAIL), done(), AT),
        TransitionRefused,
        "cannot fail",
    ),
    (
        "a repeat of an unreported job",
        started,
        lambda v: v.record_report(report_decision(ReportOutcome.REPEAT), done(), AT),
        TransitionRefused,
        "cannot repeat",
    ),
    (
        "a parked report",
        started,
        lambda v: v.record_report(report_decision(ReportOutcome.PARK), done(), AT),
        TransitionRefused,
        "cannot park",
    ),
    (
        "a running report",
        started,
        lambda v: v.record_report(report_decision(ReportOutcome.RUNNING), done(), AT),
        TransitionRefused,
        "cannot running",
    ),
    (
        "a failure without a report of a completed version",
        completed,
        lambda v: v.fail_unreported(job_id=None, reason="x", at=AT, decision=start_decision()),
        TransitionRefused,
        "only a pending attempt",
    ),
    (
        "a skipped file recorded",
        started,
        lambda v: v.record_file(sync_decision(SyncOutcome.SKIP), FILE, AT),
        TransitionRefused,
        "decided skip",
    ),
    (
        "a file that creates a version recorded on another",
        started,
        lambda v: v.record_file(sync_decision(SyncOutcome.CREATE), FILE, AT),
        TransitionRefused,
        "decided create",
    ),
    (
        "an owned field annotated",
        started,
        lambda v: v.annotate(set_fields={"isGood": True}, cleared=["loraUrl"]),
        OwnedFieldError,
        "^fields owned by the service cannot be changed: loraUrl$",
    ),
]


@pytest.mark.parametrize(
    ("make", "transition", "error", "message"), [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED]
)
def test_a_transition_the_state_does_not_allow_is_refused_and_records_nothing(
    make: Callable[[], TrainingVersion], transition: Transition, error: type[Exception], message: str
) -> None:
    version = make()
    version.collect_events()
    entry = dict(version.entry)

    with pytest.raises(error, match=message):
        transition(version)

    assert version.pending_events == []
    assert version.entry == entry


def test_only_a_create_decision_makes_a_version_from_a_file() -> None:
    with pytest.raises(TransitionRefused, match="decided synced creates no version"):
        TrainingVersion.from_file(1, sync_decision(SyncOutcome.SYNCED), FILE, AT)
    version = TrainingVersion.from_file(1, sync_decision(SyncOutcome.CREATE), FILE, AT)
    assert (version.status, version.lora_url) == ("completed", URL)


def test_a_start_after_reconcile_failed_the_request_is_still_recorded() -> None:
    version = requested()
    version.fail_unreported(job_id=None, reason="never confirmed", at=AT, decision=start_decision())

    version.record_start(request_id="r-1", job_id=JOB, decision=start_decision())

    assert (version.current_id, version.job_ids) == (JOB, [JOB])


# --------------------------------------------------------------------------- rules vs guards

JOBS = ["job-a-e1", "job-a-e2", "job-b-e1", "job-c-e1"]
report_strategy = st.builds(
    JobReport,
    job_id=st.sampled_from(JOBS),
    status=st.sampled_from(["COMPLETED", "FAILED", "CANCELLED", "IN_PROGRESS"]),
    output_status=st.sampled_from([None, "success", "error"]),
    model_name=st.just("style_1_vV9"),
    lora_url=st.sampled_from(
        [None, URL, "https://bucket.s3-accelerate.amazonaws.com/m/style_1_vV9.safetensors"]
    ),
)
step = st.one_of(
    st.tuples(st.just("report"), report_strategy),
    st.tuples(st.just("start"), st.sampled_from(JOBS)),
    st.tuples(st.just("file"), st.sampled_from(['"e1"', '"e2"'])),
    st.tuples(st.just("retry"), st.just(None)),
    st.tuples(st.just("refused"), st.just(None)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=12), by_model=st.booleans())
def test_the_aggregate_never_refuses_what_the_rules_decide(
    steps: list[tuple[str, object]], by_model: bool
) -> None:
    version = requested()
    requests = 1
    for kind, value in steps:
        facts = version.facts()
        if kind == "report":
            assert isinstance(value, JobReport)
            match = (
                policies.match_by_model(value, policies.model_of(value.model_name), facts)
                if by_model
                else JobMatch(Rule.JOB_ID_EXACT, facts, "job id")
            )
            decided = decide_report(value, match, "webhook", URL)
            if decided.outcome not in (ReportOutcome.PARK, ReportOutcome.RUNNING):
                version.record_report(decided, value, AT)
        elif kind == "start":
            assert isinstance(value, str)
            try:
                decision = policies.start_recorded(1, f"r-{requests}", value, facts, version.open_request)
            except JobIdTaken:
                continue
            if decision is not None:
                version.record_start(request_id=f"r-{requests}", job_id=value, decision=decision)
        elif kind == "file":
            assert isinstance(value, str)
            lora = LoraObject(FILE.key, value, 10, AT)
            decided_file = match_lora_file(
                lora, parse_lora_key(lora.key), StyleCandidates([facts]), URL, None
            )
            if decided_file.outcome in (SyncOutcome.COMPLETE, SyncOutcome.SYNCED):
                version.record_file(decided_file, lora, AT)
        elif kind == "retry":
            try:
                decision = policies.plan_start(1, "V9", facts, f"r-{requests + 1}")
            except VersionConflict:
                continue
            requests += 1
            version.request_training(
                request_id=f"r-{requests}",
                requested_at=AT,
                parameters={},
                description=None,
                fields={},
                decision=decision,
            )
        else:
            refused = policies.start_refused(f"r-{requests}", version.open_request, version.status)
            if refused is not None:
                version.fail_unreported(job_id=None, reason="refused", at=AT, decision=refused)
