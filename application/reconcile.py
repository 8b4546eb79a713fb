"""Reconcile: ask RunPod about versions pending too long, as if their webhook had come.

A webhook can be lost (the service was down, RunPod gave up after its retries). `/status` tells
the job's end; a job RunPod no longer knows (404 after its TTL), or a request that never got a
job id, is marked failed with that reason once it is older than the grace period
(domain/policies.py says when). This module only walks the pending versions and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from loraledger.application.context import LedgerConfig, UseCase
from loraledger.application.reports import ReportCommands
from loraledger.application.store import LedgerStore
from loraledger.domain import policies
from loraledger.domain.decisions import ReportAnswer
from loraledger.domain.observations import JobReport
from loraledger.domain.subjects import STYLE, SubjectKind

# A pending version: (style id, name), or (subject id, name, kind) for any kind of subject.
PendingVersion = tuple[int, str] | tuple[int, str, SubjectKind]


class StatusUnreadable(Exception):
    """RunPod's answer about a job could not be had or read; the message is the report's `error`."""


class StatusSource(Protocol):
    def status(self, job_id: str) -> JobReport | None:
        """What RunPod says of the job now; None when it no longer knows it. StatusUnreadable."""
        ...


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    applied: int = 0
    still_running: int = 0
    failed_unknown: int = 0
    waiting: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


class ReconcileCommands(UseCase):
    def __init__(
        self,
        store: LedgerStore,
        config: LedgerConfig,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
    ) -> None:
        super().__init__(store, config, clock, new_id)
        self.reports = ReportCommands(store, config, clock, new_id)  # `/status` answers are reports

    def run(
        self,
        pending: Iterable[PendingVersion],
        status: StatusSource,
        *,
        older_than: timedelta,
        grace: timedelta,
    ) -> ReconcileReport:
        """Each (style, version) or (subject id, version, kind) still pending and older than
        `older_than`: its job's end applied, or the attempt failed when RunPod cannot say (after
        `grace`)."""
        report = ReconcileReport()
        now = self.clock()
        for item in pending:
            style_id, version_name, kind = (*item, STYLE)[:3]
            version = self.store.find_version(style_id, version_name, kind)
            if version is None:
                continue
            facts = version.facts()
            started = policies.attempt_started_at(version.entry, now)
            if not policies.is_overdue(facts, started, now, older_than):
                continue
            report.checked += 1
            where = {f"{kind}_id": str(style_id), "version": version_name}
            age = now - started
            job_id = policies.job_to_ask(facts, version.model_name)
            if job_id is None:
                self._fail_or_wait(report, (style_id, version_name, kind), None, age, grace)
                continue
            try:
                answer = status.status(job_id)
            except StatusUnreadable as error:
                report.errors.append({**where, "job_id": job_id, "error": str(error)})
                continue
            if answer is None:
                self._fail_or_wait(report, (style_id, version_name, kind), job_id, age, grace)
                continue
            result = self.reports.apply(answer, source="reconcile")
            if result.result == ReportAnswer.RUNNING:
                report.still_running += 1
            elif result.result == ReportAnswer.APPLIED:
                report.applied += 1
            report.results.append({**where, "job_id": job_id, "result": result.result.value})
        return report

    def _fail_or_wait(
        self,
        report: ReconcileReport,
        version_key: tuple[int, str, SubjectKind],
        job_id: str | None,
        age: timedelta,
        grace: timedelta,
    ) -> None:
        """Fail the attempt RunPod cannot tell us about once the grace period is over; else wait."""
        style_id, version_name, kind = version_key

        def command() -> str | None:
            version = self.store.require_version(style_id, version_name, kind)
            failure = policies.stale_failure(version.facts(), job_id, age, grace)
            if failure is None:
                return None
            at = self.clock()
            version.fail_unreported(job_id=job_id, reason=failure.reason, at=at, decision=failure.decision)
            self.store.save_all(version)
            return failure.decision.rule

        rule = self.store.retrying(command) if age >= grace else None
        if rule is None:
            report.waiting += 1
            return
        report.failed_unknown += 1
        where: dict[str, Any] = {f"{kind}_id": str(style_id), "version": version_name}
        if job_id is not None:
            where["job_id"] = job_id
        report.results.append({**where, "result": "failed", "rule": rule})
