"""Reconcile: ask RunPod about versions pending too long, as if their webhook had come.

A webhook can be lost (the service was down, RunPod gave up after its retries). `/status` tells
the job's end; a job RunPod no longer knows (404 after its TTL), or a request that never got a
job id, is marked failed with that reason once it is older than `LORALEDGER_RECONCILE_AFTER`
(the grace period).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from loraledger.adapters.runpod import RunPodClient, RunPodError
from loraledger.adapters.runpod_payloads import JobPayload, report_from_payload
from loraledger.domain.decisions import Rule
from loraledger.domain.ledger import Ledger
from loraledger.domain.parse_duration import parse_duration
from loraledger.domain.training_version import TrainingVersion

__all__ = ["ReconcileReport", "parse_duration", "reconcile_pending"]


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    applied: int = 0
    still_running: int = 0
    failed_unknown: int = 0
    waiting: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile_pending(
    ledger: Ledger,
    runpod: RunPodClient,
    versions: Iterable[TrainingVersion],
    *,
    older_than: timedelta,
    grace: timedelta,
) -> ReconcileReport:
    report = ReconcileReport()
    now = ledger.clock()
    for version in ledger.pending_attempts(versions, older_than):
        report.checked += 1
        where = {"style_id": str(version.style_id), "version": version.version_name}
        age = now - ledger.requested_at(version)
        job_id = version.current_id
        if job_id is None or job_id == version.model_name:
            if age >= grace and ledger.fail_stale(
                version.style_id,
                version.version_name,
                job_id=None,
                rule=Rule.SUBMISSION_NEVER_CONFIRMED,
                reason="the request was never confirmed by RunPod (the service stopped before it answered)",
            ):
                report.failed_unknown += 1
                report.results.append({**where, "result": "failed", "rule": Rule.SUBMISSION_NEVER_CONFIRMED})
            else:
                report.waiting += 1
            continue
        try:
            answer = runpod.status(job_id)
        except (RunPodError, ValueError) as error:
            report.errors.append({**where, "job_id": job_id, "error": str(error)})
            continue
        if answer is None:
            if age >= grace and ledger.fail_stale(
                version.style_id,
                version.version_name,
                job_id=job_id,
                rule=Rule.NOT_FOUND_AFTER_GRACE,
                reason=f"RunPod no longer knows job {job_id} (expired before its end was reported)",
            ):
                report.failed_unknown += 1
                report.results.append(
                    {**where, "job_id": job_id, "result": "failed", "rule": Rule.NOT_FOUND_AFTER_GRACE}
                )
            else:
                report.waiting += 1
            continue
        try:
            job_report = report_from_payload(JobPayload.model_validate(answer))
        except ValidationError as error:
            report.errors.append(
                {
                    **where,
                    "job_id": job_id,
                    "error": f"unreadable /status answer: {error.error_count()} problems",
                }
            )
            continue
        result = ledger.apply_report(job_report, source="reconcile")
        if result.result == "running":
            report.still_running += 1
        elif result.result == "applied":
            report.applied += 1
        report.results.append({**where, "job_id": job_id, "result": result.result})
    return report
