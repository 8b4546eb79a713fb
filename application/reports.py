"""Job reports (a webhook, or reconcile's `/status` answer): match, decide, record.

The job index finds most reports by their job id (one read); only a report whose job is not known
is looked up by its model name. A report no version claims is parked on its job until a start
(or an import) names the job's version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loraledger.application.context import LedgerConfig, UseCase
from loraledger.domain import policies
from loraledger.domain.decisions import Decision, ReportAnswer, ReportOutcome, Source, answer_for
from loraledger.domain.indexes import JobIndex
from loraledger.domain.matching import JobMatch, decide_report
from loraledger.domain.naming import LORA_EXTENSION
from loraledger.domain.observations import JobReport
from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion
from loraledger.domain.urls import lora_url


@dataclass(frozen=True, slots=True)
class ReportResult:
    """How one job report (or a recorded start) was handled, and the decisions taken."""

    result: ReportAnswer
    style_id: int | None  # the subject's id, of kind `kind`
    version_name: str | None
    decisions: tuple[Decision, ...]
    kind: SubjectKind = STYLE


class ReportCommands(UseCase):
    def apply(self, report: JobReport, source: Source = "webhook") -> ReportResult:
        """A webhook (or a `/status` answer) about a job's end: match it, decide, record."""

        def command() -> ReportResult:
            job = self.store.find_job(report.job_id)
            version, match = self._match(report, job)
            url = derived_url(self.config, version) if version else None
            decided = decide_report(report, match, source, url)
            answer = answer_for(decided.outcome)
            if decided.outcome == ReportOutcome.RUNNING:
                return ReportResult(answer, None, None, (decided.decision,))
            if version is None:
                job = job or JobIndex.open(report.job_id)
                job.park(report, decided.decision)
                self.store.save_all(job)
                return ReportResult(answer, None, None, (decided.decision,))
            if policies.adopts_job(decided.outcome, job is not None and job.is_assigned):
                # Matched by model name: from now on the job is known by its id, and what was
                # parked for it is superseded by this report.
                job = job or JobIndex.open(report.job_id)
                job.assign(report.job_id, version.style_id, version.version_name, version.kind)
                job.mark_parked_applied()
            version.record_report(decided, report, self.clock())
            self.store.save_all(job, version)
            return ReportResult(
                answer, version.style_id, version.version_name, (decided.decision,), version.kind
            )

        return self.store.retrying(command)

    def _match(self, report: JobReport, job: JobIndex | None) -> tuple[TrainingVersion | None, JobMatch]:
        """By the job index first; by model name (one more read) only when it does not know the job."""
        if job is not None and job.style_id is not None and job.version_name is not None:
            version = self.store.find_version(job.style_id, job.version_name, job.kind)
            if version is not None:
                return version, policies.match_by_job(report, job.job_id, version.facts())
        model = policies.model_of(report.model_name)
        found = self.store.find_version(model.style_id, model.version_name, model.kind) if model else None
        return found, policies.match_by_model(report, model, found.facts() if found else None)


def derived_url(config: LedgerConfig, version: TrainingVersion) -> str | None:
    """The URL the version's LoRA has by its name, when the settings say where LoRAs are."""
    if config.lora_url_base is None:
        return None
    prefix = config.s3_actor_prefix if version.kind == ACTOR else config.s3_prefix
    if prefix is None:
        return None
    return lora_url(config.lora_url_base, prefix + version.model_name + LORA_EXTENSION)


def apply_parked(
    job: JobIndex, version: TrainingVersion, url: str | None, clock: Callable[[], datetime]
) -> list[Decision]:
    """Reports parked for a job whose version is now known are applied to it, oldest first."""
    decisions = []
    for report in job.waiting_reports:
        decided = decide_report(report, policies.parked_match(version.facts()), "webhook", url)
        version.record_report(decided, report, clock())
        decisions.append(decided.decision)
    job.mark_parked_applied()
    return decisions
