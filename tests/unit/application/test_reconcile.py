"""Reconcile over a StatusSource: what RunPod says is applied like a webhook; what it cannot say
fails the attempt after the grace period; every version is counted once."""

from __future__ import annotations

from datetime import timedelta

from loraledger.application.ledger import Ledger
from loraledger.application.reconcile import ReconcileReport, StatusUnreadable
from loraledger.domain.decisions import Rule
from loraledger.domain.observations import JobReport
from tests.unit.application.support import JOB, Clock, completed, history_types, only_entry, start

AGE = timedelta(minutes=15)
GRACE = timedelta(hours=1)


class RunPodSays:
    """A StatusSource answering from a table: a report, None (forgotten), or an exception."""

    def __init__(self, answers: dict[str, JobReport | Exception | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def status(self, job_id: str) -> JobReport | None:
        self.asked.append(job_id)
        answer = self.answers[job_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(ledger: Ledger, status: RunPodSays, *names: str) -> ReconcileReport:
    return ledger.reconcile.run([(1, name) for name in names], status, older_than=AGE, grace=GRACE)


def test_a_pending_job_that_ended_is_applied_as_if_its_webhook_had_come(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    clock.advance(minutes=20)

    report = run(ledger, RunPodSays({JOB: completed()}), "V9")

    assert (report.checked, report.applied, report.waiting, report.errors) == (1, 1, 0, [])
    assert report.results == [{"style_id": "1", "version": "V9", "job_id": JOB, "result": "applied"}]
    assert only_entry(ledger, "V9")["status"] == "completed"
    assert ledger.queries.history(1, "V9")[-1].decision["source"] == "reconcile"  # type: ignore[attr-defined]


def test_a_job_still_running_is_counted_and_nothing_is_recorded(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    clock.advance(minutes=20)

    report = run(ledger, RunPodSays({JOB: JobReport(JOB, "IN_PROGRESS")}), "V9")

    assert (report.checked, report.still_running, report.applied) == (1, 1, 0)
    assert report.results[0]["result"] == "running"
    assert history_types(ledger, "V9")[-1] == "TrainingStarted"


def test_an_attempt_younger_than_the_age_is_not_asked_about(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    clock.advance(minutes=14)
    status = RunPodSays({})

    report = run(ledger, status, "V9")

    assert (report.checked, status.asked) == (0, [])


def test_a_version_no_longer_pending_is_not_asked_about(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    ledger.reports.apply(completed())
    clock.advance(hours=2)
    status = RunPodSays({})

    report = run(ledger, status, "V9", "V404")

    assert (report.checked, status.asked) == (0, [])


def test_an_unreadable_answer_is_an_error_row_and_changes_nothing(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    clock.advance(hours=2)

    report = run(ledger, RunPodSays({JOB: StatusUnreadable("unreadable /status answer: 2 problems")}), "V9")

    assert report.errors == [
        {"style_id": "1", "version": "V9", "job_id": JOB, "error": "unreadable /status answer: 2 problems"}
    ]
    assert (report.checked, report.failed_unknown, report.waiting) == (1, 0, 0)
    assert only_entry(ledger, "V9")["status"] == "pending"


def test_a_job_runpod_forgot_waits_out_the_grace_then_fails(ledger: Ledger, clock: Clock) -> None:
    start(ledger)
    clock.advance(minutes=59)
    early = run(ledger, RunPodSays({JOB: None}), "V9")
    clock.advance(minutes=1)

    late = run(ledger, RunPodSays({JOB: None}), "V9")

    assert (early.waiting, early.failed_unknown) == (1, 0)
    assert (late.waiting, late.failed_unknown) == (0, 1)
    assert late.results == [
        {
            "style_id": "1",
            "version": "V9",
            "job_id": JOB,
            "result": "failed",
            "rule": Rule.NOT_FOUND_AFTER_GRACE,
        }
    ]
    entry = only_entry(ledger, "V9")
    assert (entry["status"], entry["error"]) == (
        "failed",
        f"RunPod no longer knows job {JOB} (expired before its end was reported)",
    )


def test_a_request_never_confirmed_fails_after_the_grace_without_asking_runpod(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.start.request(1, "V9", parameters={})
    clock.advance(hours=1)
    status = RunPodSays({})

    report = run(ledger, status, "V9")

    assert status.asked == []
    assert report.results == [
        {"style_id": "1", "version": "V9", "result": "failed", "rule": Rule.SUBMISSION_NEVER_CONFIRMED}
    ]
    assert only_entry(ledger, "V9")["error"].startswith("the request was never confirmed by RunPod")
