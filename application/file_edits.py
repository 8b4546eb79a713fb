"""Edits someone else made to a style's file, taken in as events (CONTRACT §12).

The adapter (adapters/files.py) finds the edit and hands both texts' entries here; the rule
(domain/file_edits.py) decides each version's change; this records them in one transaction.
A refused owned field makes `keep_backup` keep the edited file (its path is recorded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from loraledger.application.context import UseCase
from loraledger.application.reports import apply_parked, derived_url
from loraledger.domain import blobs, policies
from loraledger.domain.decisions import Decision, Rule, StartOutcome
from loraledger.domain.entries import Status
from loraledger.domain.file_edits import (
    AdoptedStart,
    EntryEdit,
    FileEditPlan,
    KnownVersion,
    NewEntry,
    plan_file_edit,
    shown_decision,
)
from loraledger.domain.legacy import RawEntry
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.times import parse_time
from loraledger.domain.training_version import TrainingVersion


@dataclass(slots=True)
class FileEditReport:
    """What one edit did: the decisions recorded, the backup kept (refused parts), what was unusable."""

    style_id: int  # the subject's id, of kind `kind`
    decisions: list[Decision] = field(default_factory=list)
    backup: str | None = None
    unusable: list[str] = field(default_factory=list)
    events: int = 0
    kind: SubjectKind = STYLE

    @property
    def refused(self) -> bool:
        return self.backup is not None


class FileEditCommands(UseCase):
    def take_in(
        self,
        style_id: int,
        source: str,
        base: Sequence[Any] | None,
        edited: Sequence[Any],
        keep_backup: Callable[[], str],
        kind: SubjectKind = STYLE,
    ) -> FileEditReport:
        """Record what the edit changes; the backup is kept once, before anything is saved."""
        kept: list[str] = []

        def backup_once() -> str:
            if not kept:
                kept.append(keep_backup())
            return kept[0]

        def command() -> FileEditReport:
            versions = {v.version_name: v for v in self.store.style_versions(style_id, kind)}
            known = {
                name: KnownVersion(v.facts(), v.document_entry(), v.hidden) for name, v in versions.items()
            }
            plan = plan_file_edit(style_id, source, base, edited, known)
            report = FileEditReport(style_id, unusable=list(plan.unusable), kind=kind)
            if plan.refused:
                report.backup = backup_once()
            touched = self._record(style_id, source, plan, versions, report)
            report.events = self.store.save_all(*touched)
            return report

        return self.store.retrying(command)

    def set_hidden(
        self, style_id: int, version_name: str, hidden: bool, kind: SubjectKind = STYLE
    ) -> TrainingVersion:
        """`PATCH … {"hidden": …}`: a hidden version shown again (or one hidden); a repeat records nothing."""

        def command() -> TrainingVersion:
            version = self.store.require_version(style_id, version_name, kind)
            if version.hidden != hidden:
                version.set_hidden(hidden, shown_decision(hidden))
                self.store.save_all(version)
            return version

        return self.store.retrying(command)

    # ------------------------------------------------------------------ recording a plan

    def _record(
        self,
        style_id: int,
        source: str,
        plan: FileEditPlan,
        versions: dict[str, TrainingVersion],
        report: FileEditReport,
    ) -> list[Aggregate]:
        touched: list[Aggregate] = []
        for hide in plan.hides:
            versions[hide.name].set_hidden(True, hide.decision)
            touched.append(versions[hide.name])
            report.decisions.append(hide.decision)
        for edit in plan.edits:
            touched.extend(self._edit(versions[edit.name], source, edit, report))
        if plan.new_entries:
            index = self.store.style_index(style_id, report.kind)
            for new in plan.new_entries:
                touched.extend(self._new(style_id, source, new, report))
            index.add_versions([new.name for new in plan.new_entries])
            touched.append(index)
        return touched

    def _edit(
        self, version: TrainingVersion, source: str, edit: EntryEdit, report: FileEditReport
    ) -> list[Aggregate]:
        report.decisions.append(edit.decision)
        if edit.set_fields or edit.cleared or edit.refused or edit.show:
            version.take_file_edit(
                source=source,
                set_fields=edit.set_fields,
                cleared=edit.cleared,
                refused=edit.refused,
                backup=report.backup if edit.refused else None,
                decision=edit.decision,
            )
        if edit.fail is not None and version.status == Status.PENDING:
            version.fail_unreported(job_id=None, reason=edit.fail, at=self.clock(), decision=edit.decision)
        if edit.start is not None:
            return [version, *self._start(version, edit.start, edit.decision, report)]
        return [version]

    def _new(self, style_id: int, source: str, new: NewEntry, report: FileEditReport) -> list[Aggregate]:
        report.decisions.append(new.decision)
        if new.start is not None:
            version = TrainingVersion.register(style_id, new.name, report.kind)
            return [version, *self._start(version, new.start, new.decision, report)]
        blobs.check_fields(new.entry, "entry")
        version = TrainingVersion.from_import(
            style_id,
            new.name,
            source=source,
            entry=new.entry,
            fingerprint=RawEntry(0, new.entry).fingerprint,
            decision=new.decision,
            kind=report.kind,
        )
        job_id = policies.job_to_index(version.facts(), version.model_name)
        if job_id is None or (job := self.store.job_index(job_id)).is_assigned:
            return [version]
        job.assign(job_id, style_id, new.name, report.kind)
        apply_parked(job, version, derived_url(self.config, version), self.clock)
        return [version, job]

    def _start(
        self, version: TrainingVersion, start: AdoptedStart, decision: Decision, report: FileEditReport
    ) -> list[Aggregate]:
        """A training started elsewhere: its request and its job, so that its webhook applies."""
        request_id = self.new_id()
        version.request_training(
            request_id=request_id,
            requested_at=self._started_at(start.timestamp),
            parameters=start.parameters,
            description=start.description,
            fields=start.fields,
            decision=decision,
        )
        job = self.store.job_index(start.job_id)
        if job.is_assigned:  # the id is another attempt's: the start stays pending, unindexed
            return []
        started = Decision("file-edit", Rule.FILE_STARTED, StartOutcome.STARTED, {"job_id": start.job_id})
        version.record_start(request_id=request_id, job_id=start.job_id, decision=started)
        job.assign(start.job_id, version.style_id, version.version_name, version.kind)
        report.decisions.extend(apply_parked(job, version, derived_url(self.config, version), self.clock))
        return [job]

    def _started_at(self, timestamp: str | None) -> datetime:
        if timestamp is not None:
            try:
                return parse_time(timestamp)
            except ValueError:
                pass
        return self.clock()
