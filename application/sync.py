"""S3 sync: every listed LoRA file through the two-pass matching, many styles per transaction.

Styles' files and actors' files (listed under their own prefix) go through the same matching,
each within its own subject: style 6 and actor 6 never see each other's versions.

A re-sync with nothing new reads one StyleIndex per style (its files' ETags) and records nothing.
Every file passed over is recorded once per (key, ETag) in the SkippedFiles list, saved with the
batch that decided it (a key that is no LoRA name: in a transaction of its own at the end), and
on the version it names when that version already has its LoRA.
A style with new files has its index and each of its versions read once, from the store (not
through the aggregate cache, whose copies a one-pass read does not need). Styles are saved
together, about SYNC_BATCH_FILES files per transaction: a run that stops part-way has recorded
whole batches, and the next run takes the rest (their ETags are not recorded yet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from loraledger.application.context import UseCase
from loraledger.domain.decisions import Decision, Rule, Source, SyncOutcome
from loraledger.domain.indexes import StyleIndex
from loraledger.domain.matching import StyleCandidates, match_lora_file
from loraledger.domain.naming import ModelName, NameRejected, parse_lora_key
from loraledger.domain.observations import LoraObject
from loraledger.domain.skips import SkippedFile, SkippedFiles
from loraledger.domain.subjects import ACTOR, STYLE, Subject
from loraledger.domain.times import format_time
from loraledger.domain.training_version import TrainingVersion

if TYPE_CHECKING:
    from eventsourcing.domain import Aggregate
from loraledger.domain.urls import lora_url

# Files matched per transaction: one commit for many styles, yet a bounded insert (PostgreSQL's
# large pipelined inserts are best kept to a few thousand events) and a bounded redo on conflict.
SYNC_BATCH_FILES = 2_000
# Told the subject's id, and every one of its versions as saved, after each transaction (the files
# are rendered from them, so nothing is read again; the versions say their subject's kind).
StyleSaved = Callable[[int, list[TrainingVersion]], None]
# Listed files of one subject, each with its parsed name.
SubjectFiles = list[tuple[LoraObject, ModelName]]


@dataclass(slots=True)
class SyncReport:
    """CONTRACT §4's report (rendered by api/render.py), plus the styles touched and the event count."""

    scanned: int = 0
    matched_pending: int = 0
    matched_synced: int = 0
    created: int = 0
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    styles: set[int] = field(default_factory=set)
    events: int = 0
    waiting: dict[int, str] = field(default_factory=dict)  # styles whose file waits for its folder
    actors: set[int] = field(default_factory=set)  # the actors touched


class SyncCommands(UseCase):
    def observe(
        self,
        objects: Iterable[LoraObject],
        *,
        url_base: str,
        only_style: int | None = None,
        progress: Callable[[int], None] | None = None,
        on_saved: StyleSaved | None = None,
        actor_objects: Iterable[LoraObject] = (),
        only_actor: int | None = None,
    ) -> SyncReport:
        """Apply the two-pass matching to every listed object, many subjects per transaction.

        `objects` are listed under the styles' prefix, `actor_objects` under the actors'; one
        report counts both. `only_style` (or `only_actor`) keeps that one subject's files.
        """
        report = SyncReport()
        by_subject: dict[Subject, SubjectFiles] = {}
        not_named: list[SkippedFile] = []
        one_subject = only_style is not None or only_actor is not None
        for kind, listed in ((STYLE, objects), (ACTOR, actor_objects)):
            only = only_actor if kind == ACTOR else only_style
            if one_subject and only is None:
                continue  # a sync of one actor leaves every style alone, and the other way round
            for lora in listed:
                report.scanned += 1
                try:
                    model = parse_lora_key(lora.key, kind)
                except NameRejected as rejected:
                    report.skipped.append({"key": lora.key, "reason": rejected.reason})
                    not_named.append(
                        SkippedFile(
                            key=lora.key,
                            etag=lora.etag,
                            reason=rejected.reason,
                            rule=Rule.NOT_A_LORA_NAME,
                            source="s3-sync",
                            style_id=None,
                            version=None,
                            skipped_at="",  # set when recorded
                        )
                    )
                    continue
                if only is None or model.style_id == only:
                    by_subject.setdefault(Subject(kind, model.style_id), []).append((lora, model))
        batch: list[tuple[Subject, SubjectFiles]] = []
        batch_files = 0
        for subject in sorted(by_subject, key=lambda subject: (subject.kind != STYLE, subject.id)):
            batch.append((subject, by_subject.pop(subject)))
            batch_files += len(batch[-1][1])
            if batch_files >= SYNC_BATCH_FILES:
                self._run_batch(batch, url_base, report, on_saved)
                if progress is not None:
                    progress(batch_files)
                batch, batch_files = [], 0
        if batch:
            self._run_batch(batch, url_base, report, on_saved)
            if progress is not None:
                progress(batch_files)
        if not_named:
            report.events += self._record_not_named(not_named)
        return report

    def _record_not_named(self, skips: list[SkippedFile]) -> int:
        """Keys that name no LoRA: their ETag is never recorded on a style, so each sync sees them
        again; the SkippedFiles list records each (key, ETag) once."""

        def attempt() -> int:
            listed = self.store.skipped_files()
            at = format_time(self.clock())
            listed.record(replace(skip, skipped_at=at) for skip in skips)
            return self.store.save_all(listed) if listed.has_new_skips else 0

        return self.store.retrying(attempt)

    def _run_batch(
        self,
        batch: Sequence[tuple[Subject, Sequence[tuple[LoraObject, ModelName]]]],
        url_base: str,
        report: SyncReport,
        on_saved: StyleSaved | None,
    ) -> None:
        """Match a batch of styles and save them in one transaction (again on fresh state after a
        concurrent writer's conflict); the report takes them once they are saved."""

        def attempt() -> tuple[list[StyleSync], int]:
            listed = self.store.skipped_files()
            synced = [self._sync_style(subject, files, url_base, listed) for subject, files in batch]
            skipping = listed if listed.has_new_skips else None
            skip_events = len(listed.pending_events) if skipping else 0
            self.store.save_all(*(aggregate for style in synced for aggregate in style.aggregates), skipping)
            return synced, skip_events

        synced, skip_events = self.store.retrying(attempt)
        report.events += skip_events
        for style in synced:
            style.report_into(report)
            if style.events and on_saved is not None:
                on_saved(style.subject.id, style.versions)

    def _sync_style(
        self,
        subject: Subject,
        files: Sequence[tuple[LoraObject, ModelName]],
        url_base: str,
        listed: SkippedFiles,
    ) -> StyleSync:
        index = self.store.style_index(subject.id, subject.kind)
        return self.match_files(index, files, url_base, "s3-sync", listed)

    def match_files(
        self,
        index: StyleIndex,
        files: Sequence[tuple[LoraObject, ModelName]],
        url_base: str,
        source: Source,
        listed: SkippedFiles | None = None,
    ) -> StyleSync:
        """One subject's files through the two passes (not saved: the caller saves what it returns).
        Each file passed over that `listed` does not hold yet is recorded there, and on the version
        it names when that version exists."""
        subject = index.subject
        fresh = [(lora, model) for lora, model in files if index.file_etags.get(lora.key) != lora.etag]
        synced = StyleSync(subject, unchanged=len(files) - len(fresh))
        if not fresh:
            return synced
        versions = {v.version_name: v for v in self.store.indexed_versions(index)}
        candidates = StyleCandidates(v.facts() for v in versions.values())
        now = self.clock()
        counts = synced.counts
        skips: list[SkippedFile] = []
        for lora, model in fresh:
            decided = match_lora_file(lora, model, candidates, lora_url(url_base, lora.key), None, source)
            synced.decisions.append(decided.decision)
            if decided.outcome == SyncOutcome.SKIP:
                reason = f"{model.version_name}: {decided.reason}"
                synced.skipped.append({"key": lora.key, "reason": reason})
                if listed is not None and not listed.holds(lora.key, lora.etag):
                    skips.append(_skip_of(model, lora, decided.decision, reason, now))
                    concerned = versions.get(model.version_name)
                    if concerned is not None:
                        concerned.record_skipped_file(decided, lora, now)
                continue
            name = decided.version_name
            assert name is not None
            if decided.outcome == SyncOutcome.CREATE:
                version = versions[name] = TrainingVersion.from_file(
                    subject.id, decided, lora, now, subject.kind
                )
            else:
                version = versions[name]
                version.record_file(decided, lora, now)
            counts[decided.outcome] += 1
            candidates.put(version.facts())
        # An empty file's ETag is not recorded: it is skipped (and reported) on every sync until
        # the real file replaces it, and a style that only has empty files gets no index at all.
        recorded = {lora.key: lora.etag for lora, _ in fresh if lora.size > 0}
        if listed is not None:
            listed.record(skips)
        index.add_versions(list(versions))
        index.record_files(recorded)
        synced.versions = list(versions.values())
        synced.aggregates = [index] if versions or recorded else []
        synced.aggregates.extend(synced.versions)
        synced.events = sum(len(aggregate.pending_events) for aggregate in synced.aggregates)
        return synced


def _skip_of(
    model: ModelName, lora: LoraObject, decision: Decision, reason: str, at: datetime
) -> SkippedFile:
    return SkippedFile(
        key=lora.key,
        etag=lora.etag,
        reason=reason,
        rule=decision.rule,
        source=decision.source,
        style_id=model.style_id,
        version=model.version_name,
        skipped_at=format_time(at),
    )


@dataclass(slots=True)
class StyleSync:
    """One subject's part of a batch: what it saves, and what it adds to the report once saved."""

    subject: Subject
    unchanged: int = 0
    counts: dict[SyncOutcome, int] = field(default_factory=lambda: dict.fromkeys(SyncOutcome, 0))
    skipped: list[dict[str, str]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    versions: list[TrainingVersion] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    events: int = 0

    def report_into(self, report: SyncReport) -> None:
        report.matched_pending += self.counts[SyncOutcome.COMPLETE]
        report.matched_synced += self.counts[SyncOutcome.SYNCED]
        report.created += self.counts[SyncOutcome.CREATE]
        report.unchanged += self.unchanged
        report.skipped.extend(self.skipped)
        report.decisions.extend(self.decisions)
        report.events += self.events
        if self.events:
            (report.actors if self.subject.kind == ACTOR else report.styles).add(self.subject.id)
