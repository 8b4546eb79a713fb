"""Import of legacy `training_versions.json` documents: one version per group of entries.

A repeat of the same document records nothing (each entry's fingerprint is kept); an imported
attempt's job id is indexed, so its webhook (or one parked for it) finds the version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eventsourcing.domain import Aggregate

from loraledger.application.context import UseCase
from loraledger.application.reports import apply_parked, derived_url
from loraledger.domain import policies
from loraledger.domain.decisions import Decision
from loraledger.domain.errors import LedgerError
from loraledger.domain.legacy import LegacyPlan, VersionGroup, fields_to_take, primary_entry
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion


@dataclass(slots=True)
class ImportReport:
    style_id: int  # the subject's id, of kind `kind`
    source: str
    versions: int = 0
    imported: int = 0
    merged: int = 0
    already_imported: int = 0
    events: int = 0
    decisions: list[Decision] = field(default_factory=list)
    kind: SubjectKind = STYLE


class ImportCommands(UseCase):
    def import_plans(
        self, plans: Sequence[tuple[LegacyPlan, str]], *, dry_run: bool = False
    ) -> list[ImportReport | LedgerError | ValueError]:
        """Record several documents (plan, source) in one transaction; per document, its report or
        why it was refused. When one is refused, each is recorded on its own, so the others are."""
        if dry_run or len(plans) <= 1:
            return [self._import_or_refusal(plan, source, dry_run) for plan, source in plans]

        def command() -> list[ImportReport]:
            with self.store.gathering():
                return [self._record(plan, source, dry_run=False) for plan, source in plans]

        try:
            return list(self.store.retrying(command))
        except (LedgerError, ValueError):
            return [self._import_or_refusal(plan, source, dry_run) for plan, source in plans]

    def _import_or_refusal(
        self, plan: LegacyPlan, source: str, dry_run: bool
    ) -> ImportReport | LedgerError | ValueError:
        try:
            return self.import_plan(plan, source, dry_run=dry_run)
        except (LedgerError, ValueError) as refused:  # e.g. a job id that is another version's
            return refused

    def import_plan(self, plan: LegacyPlan, source: str, *, dry_run: bool = False) -> ImportReport:
        """Record a legacy document's versions; a repeat of the same document records nothing."""
        return self.store.retrying(lambda: self._record(plan, source, dry_run=dry_run))

    def _record(self, plan: LegacyPlan, source: str, *, dry_run: bool) -> ImportReport:
        report = ImportReport(plan.style_id, source, versions=len(plan.groups), kind=plan.kind)
        index = self.store.style_index(plan.style_id, plan.kind)
        touched: list[Aggregate] = [index]
        # Every version is added to its style's index in the transaction that creates it, so a
        # name the index lacks has no version to read.
        known = set(index.version_names)
        for group in plan.groups:
            touched.extend(self._import_group(plan, group, source, report, known))
        index.add_versions([group.version_name for group in plan.groups])
        if dry_run:
            report.events = sum(len(a.pending_events) for a in touched)
        else:
            report.events = self.store.save_all(*touched)
        return report

    def _import_group(
        self, plan: LegacyPlan, group: VersionGroup, source: str, report: ImportReport, known: set[str]
    ) -> list[Aggregate]:
        version = (
            self.store.find_version(plan.style_id, group.version_name, plan.kind)
            if group.version_name in known
            else None
        )
        recorded = frozenset(version.imported_fingerprints) if version else frozenset()
        new_entries = policies.entries_to_record(group, recorded)
        report.already_imported += len(group.entries) - len(new_entries)
        if not new_entries:
            return []
        if version is None:
            decision = policies.import_created(group, source)
            version = TrainingVersion.from_import(
                plan.style_id,
                group.version_name,
                source=source,
                entry=primary_entry(group),
                fingerprint=group.primary.fingerprint,
                decision=decision,
                kind=plan.kind,
            )
            report.decisions.append(decision)
            report.imported += 1
            new_entries = new_entries[1:]
        for raw, rule in new_entries:
            decision = policies.import_merged(version.facts(), raw, rule, source)
            version.merge_entry(
                source=source,
                raw_entry=raw.data,
                taken=fields_to_take(version.entry, raw.data),
                fingerprint=raw.fingerprint,
                decision=decision,
            )
            report.decisions.append(decision)
            report.merged += 1
        return [version, *self._index_job(version)]

    def _index_job(self, version: TrainingVersion) -> list[Aggregate]:
        """An imported attempt's job id finds its version; a webhook parked for it is applied."""
        job_id = policies.job_to_index(version.facts(), version.model_name)
        if job_id is None:
            return []
        job = self.store.job_index(job_id)
        if job.is_assigned:
            return []
        job.assign(job_id, version.style_id, version.version_name, version.kind)
        apply_parked(job, version, derived_url(self.config, version), self.clock)
        return [job]
