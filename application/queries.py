"""Reads of the current state: versions, their names, their history (the files come from projections),
and what the pages ask: a version's timeline, a style's entries at an earlier time, and which
version a job id, model name, S3 key or URL names.

`kind` says whose id `style_id` is: a style's (the default) or an actor's."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.application.store import LedgerStore
from loraledger.domain.entry_changes import FieldChange, entry_changes
from loraledger.domain.indexes import JobIndex
from loraledger.domain.naming import NameRejected, parse_lora_key, parse_model_name, version_number
from loraledger.domain.skips import SkippedFile
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion

MAX_SEARCH_LENGTH = 2_000  # longer than any job id, key or URL: refused before any lookup
PARKED_TOPIC = "loraledger:JobIndex.WebhookParked"
PARKED_READ_BATCH = 1_000


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One event of a version, the entry as the file showed it after it, and what the event changed."""

    event: CanMutateAggregate[UUID]
    entry: dict[str, Any] | None
    changes: list[FieldChange]


@dataclass(frozen=True, slots=True)
class Located:
    """The version a searched text names, and how it was read (`job id`, `model name`, ...)."""

    style_id: int
    version_name: str
    found_as: str


class Queries:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def find_version(
        self, style_id: int, version_name: str, kind: SubjectKind = STYLE
    ) -> TrainingVersion | None:
        return self.store.find_version(style_id, version_name, kind)

    def version_names(self, style_id: int, kind: SubjectKind = STYLE) -> list[str]:
        """The subject's versions, newest first; empty for a subject with no history."""
        return self.store.version_names(style_id, kind)

    def style_versions(self, style_id: int, kind: SubjectKind = STYLE) -> list[TrainingVersion]:
        return self.store.style_versions(style_id, kind)

    def history(
        self, style_id: int, version_name: str, kind: SubjectKind = STYLE
    ) -> list[CanMutateAggregate[UUID]]:
        """Every event of the version, oldest first. UnknownVersion if it has none."""
        return self.store.history(style_id, version_name, kind)

    def entry(self, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> dict[str, Any]:
        """The version's entry as the file shows it. UnknownVersion if it has none."""
        return self.store.require_version(style_id, version_name, kind).document_entry()

    def skipped_files(self, style_id: int | None = None) -> list[SkippedFile]:
        """Every S3 file a sync passed over (once per key and ETag), oldest first."""
        return self.store.skipped_files().listed(style_id)

    def unmatched(self) -> list[dict[str, Any]]:
        """Webhooks parked for jobs no version claims yet (CONTRACT §9), one item per job, most
        recently received first: `job_id`, `status`, `model_name`, `received_at`, `deliveries`."""
        jobs: dict[UUID, None] = {}
        position = 0
        while batch := self.store.recorder.select_notifications(
            position + 1, PARKED_READ_BATCH, topics=[PARKED_TOPIC]
        ):
            jobs.update(dict.fromkeys(UUID(str(notification.originator_id)) for notification in batch))
            position = batch[-1].id
        listed = []
        for job_id in jobs:
            job = self.store.find(job_id)
            if not isinstance(job, JobIndex) or not (waiting := job.waiting_reports):
                continue
            last = waiting[-1]
            listed.append(
                {
                    "job_id": last.job_id,
                    "status": last.status,
                    "model_name": last.model_name,
                    "received_at": job.parked_times[-1],
                    "deliveries": len(waiting),
                }
            )
        return sorted(listed, key=lambda item: item["received_at"], reverse=True)

    def timeline(self, style_id: int, version_name: str) -> list[TimelineStep]:
        """Every event of the version, oldest first, each with the entry after it (None while the
        version is hidden from the file) and the fields it changed. UnknownVersion if it has none."""
        steps: list[TimelineStep] = []
        version: TrainingVersion | None = None
        shown: dict[str, Any] | None = None
        for event in self.store.history(style_id, version_name):
            folded = event.mutate(version)
            version = folded if isinstance(folded, TrainingVersion) else version
            current = None if version is None or version.hidden else version.document_entry()
            changes = entry_changes(shown, current)
            if changes or (current is None) != (shown is None):
                # A copy of its own: later events may change the aggregate's nested values in place.
                shown = copy.deepcopy(current)
            steps.append(TimelineStep(event, shown, changes))
        return steps

    def entries_at(self, style_id: int, moment: datetime) -> list[dict[str, Any]]:
        """The style's entries as its file had them at `moment`, newest version first."""
        entries: list[tuple[int, dict[str, Any]]] = []
        for name in self.store.version_names(style_id):
            version: TrainingVersion | None = None
            for event in self.store.history(style_id, name):
                if event.timestamp > moment:
                    break
                folded = event.mutate(version)
                version = folded if isinstance(folded, TrainingVersion) else version
            if version is not None and not version.hidden:
                entries.append((version_number(name), version.document_entry()))
        return [entry for _, entry in sorted(entries, key=lambda pair: pair[0], reverse=True)]

    def locate(self, text: str) -> Located | None:
        """The version a job id, model name, LoRA file name, S3 key or LoRA URL names; None when
        none does (or the text is too long to be any of them)."""
        searched = text.strip()
        if not searched or len(searched) > MAX_SEARCH_LENGTH:
            return None
        job = self.store.find_job(searched)
        # The pages show styles: an actor's job or model name locates nothing there.
        if (
            job is not None
            and job.style_id is not None
            and job.version_name is not None
            and job.kind == STYLE
        ):
            return Located(job.style_id, job.version_name, "job id")
        for found_as, stem in _name_candidates(searched):
            try:
                model = parse_lora_key(stem) if stem.endswith(".safetensors") else parse_model_name(stem)
            except NameRejected:
                continue
            if (
                model.kind == STYLE
                and self.store.find_version(model.style_id, model.version_name) is not None
            ):
                return Located(model.style_id, model.version_name, found_as)
        return None

    def parked_reports(self, text: str) -> int:
        """How many reports of the job `text` names wait, parked, for a version with that job id."""
        searched = text.strip()
        if not searched or len(searched) > MAX_SEARCH_LENGTH:
            return 0
        job = self.store.find_job(searched)
        return 0 if job is None or job.is_assigned else len(job.waiting_reports)


def _name_candidates(text: str) -> list[tuple[str, str]]:
    """(how it was read, the text to parse as a model name or LoRA key) for each reading of `text`."""
    if "://" in text:
        try:
            path = unquote(urlsplit(text).path)
        except ValueError:  # not a URL after all (`https://[::1`)
            return []
        return [("LoRA URL", path)] if path else []
    if "/" in text or text.endswith(".safetensors"):
        return [("S3 key", text)]
    return [("model name", text)]
