"""Starting a training: the request is recorded before RunPod is asked, then its answer.

`request` names the version and records the attempt as pending; `record_start` records RunPod's
job id (and applies any webhook that arrived before it); `record_failure` records why there is
no job. The adapter (adapters/training_start.py) calls RunPod in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loraledger.application.context import UseCase
from loraledger.application.reports import ReportResult, apply_parked, derived_url
from loraledger.domain import blobs, policies
from loraledger.domain.decisions import ReportAnswer
from loraledger.domain.entries import check_settable
from loraledger.domain.naming import parse_subject_id, parse_version_name
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    style_id: int  # the subject's id, of kind `kind`
    version_name: str
    model_name: str
    request_id: str
    kind: SubjectKind = STYLE


class StartCommands(UseCase):
    def check_startable(self, style_id: int, version_name: str | None, kind: SubjectKind = STYLE) -> None:
        """What `request` would refuse about the version itself (a bad name: NameRejected; a
        pending or completed version: VersionConflict), asked before anything else is needed."""
        style_id = parse_subject_id(style_id, kind)
        if version_name is not None:
            name = parse_version_name(version_name)
            version = self.store.find_version(style_id, name, kind)
            policies.check_startable(style_id, name, version.status if version else None, kind)

    def request(
        self,
        style_id: int,
        version_name: str | None,
        *,
        parameters: dict[str, Any],
        description: str | None = None,
        fields: dict[str, Any] | None = None,
        kind: SubjectKind = STYLE,
    ) -> TrainingRequest:
        """Record that a training is about to be sent to RunPod (before anything is sent)."""
        style_id = parse_subject_id(style_id, kind)
        extra = dict(fields or {})
        blobs.check(parameters, "parameters")
        blobs.check(description, "description")
        blobs.check_fields(extra, "fields")
        check_settable(extra, "set")

        def command() -> TrainingRequest:
            index = self.store.style_index(style_id, kind)
            version: TrainingVersion | None
            if version_name is None:
                # Looked up once: a version that appears after this look-up makes the save
                # conflict, and the command runs again (never a 409 for a name nobody gave).
                name, version = self._next_free_name(style_id, index.version_names, kind), None
            else:
                name = parse_version_name(version_name)
                version = self.store.find_version(style_id, name, kind)
            request_id = self.new_id()
            facts = version.facts() if version else None
            decision = policies.plan_start(style_id, name, facts, request_id, kind)
            version = version or TrainingVersion.register(style_id, name, kind)
            version.request_training(
                request_id=request_id,
                requested_at=self.clock(),
                parameters=parameters,
                description=description,
                fields=extra,
                decision=decision,
            )
            index.add_versions([name])
            self.store.save_all(index, version)
            return TrainingRequest(style_id, name, version.model_name, request_id, kind)

        return self.store.retrying(command)

    def _next_free_name(self, style_id: int, known: Iterable[str], kind: SubjectKind) -> str:
        """The next `V<n>` nobody has taken: a concurrent start may have taken the one the index
        (read a moment earlier) gives; then the one after it is ours, and saving the index,
        which that start changed too, conflicts and runs the command again on fresh state."""
        taken = list(known)
        while True:
            name = policies.next_version_name(style_id, taken, kind)
            if self.store.find_version(style_id, name, kind) is None:
                return name
            taken.append(name)

    def record_start(self, request: TrainingRequest, job_id: str) -> ReportResult:
        """RunPod accepted the request as `job_id`; apply any webhook that was waiting for it."""

        def command() -> ReportResult:
            version = self.store.require_version(request.style_id, request.version_name, request.kind)
            decision = policies.start_recorded(
                request.style_id,
                request.request_id,
                job_id,
                version.facts(),
                version.open_request,
                request.kind,
            )
            if decision is None:
                return ReportResult(
                    ReportAnswer.REPEAT, request.style_id, request.version_name, (), request.kind
                )
            job = self.store.job_index(job_id)
            job.assign(job_id, request.style_id, request.version_name, request.kind)
            version.record_start(request_id=request.request_id, job_id=job_id, decision=decision)
            url = derived_url(self.config, version)
            decisions = (decision, *apply_parked(job, version, url, self.clock))
            self.store.save_all(job, version)
            return ReportResult(
                ReportAnswer.APPLIED, request.style_id, request.version_name, decisions, request.kind
            )

        return self.store.retrying(command)

    def record_failure(self, request: TrainingRequest, reason: str) -> None:
        """RunPod refused or could not be reached: the attempt is failed, with the reason."""

        def command() -> None:
            version = self.store.require_version(request.style_id, request.version_name, request.kind)
            decision = policies.start_refused(request.request_id, version.open_request, version.status)
            if decision is not None:
                version.fail_unreported(job_id=None, reason=reason, at=self.clock(), decision=decision)
                self.store.save_all(version)

        self.store.retrying(command)
