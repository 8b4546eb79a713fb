"""Folds the ledger's notification log into one document per style.

The runner remembers how far it has read and which styles changed since their texts were last
taken; it writes nothing. projections/writer.py hands those texts to the files (the one write
path), and reads (`document`) fold first, so they are current at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import CanMutateAggregate

from loraledger.projections.training_versions import StyleDocuments, is_training_version_topic

READ_BATCH = 2_000
# Every version belongs to a style: the one kind of subject, named in the metrics' `kind` label.
SUBJECT_KIND = "style"


@dataclass(frozen=True, slots=True)
class SubjectSummary:
    """One style for the pages' list: its versions by status, its last event, how many events."""

    style_id: int
    by_status: dict[str, int]
    last_activity: datetime | None
    events: int


@dataclass(slots=True)
class StatusSummary:
    """Versions counted by (subject kind, status); the request times of the pending ones."""

    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    pending_since: list[str] = field(default_factory=list)


def log_identity(log: Application[UUID]) -> str:
    """A short id of this event log (from its first record), so positions of two logs never mix."""
    first = log.recorder.select_notifications(1, 1)
    if not first:
        return "empty"
    record = first[0]
    digest = hashlib.sha256(str(record.originator_id).encode() + record.topic.encode() + record.state)
    return digest.hexdigest()[:16]


def read_batches(log: Application[UUID], after: int) -> Iterator[tuple[int, list[CanMutateAggregate[UUID]]]]:
    """(last notification id read, its TrainingVersion events) per batch after `after`, in log order.

    The position advances over other aggregates' events too, so a reader never reads them twice.
    """
    position = after
    while True:
        batch = log.recorder.select_notifications(position + 1, READ_BATCH)
        if not batch:
            return
        position = batch[-1].id
        yield (
            position,
            [
                cast(CanMutateAggregate[UUID], log.mapper.to_domain_event(notification))
                for notification in batch
                if is_training_version_topic(notification.topic)
            ],
        )
        if len(batch) < READ_BATCH:
            return


class ProjectionRunner:
    """The documents folded from the log through `position`, and the styles due to be written.

    Folding is cheap and makes reads current; writing costs file I/O and is the writer's. Every
    method takes the runner's lock, so a fold, a read and the writer's taking of texts never mix.
    """

    def __init__(self, log: Application[UUID]) -> None:
        self.log = log
        self.documents = StyleDocuments()
        self.position = 0
        self._lock = threading.Lock()
        self._dirty: set[int] | None = None  # None: nothing taken yet, so every style is due

    def fold(self) -> int:
        """Read what is new in the log into the documents; returns how many events were read."""
        with self._lock:
            count = 0
            for position, events in read_batches(self.log, self.position):
                for event in events:
                    style = self.documents.apply(event)
                    if style is not None and self._dirty is not None:
                        self._dirty.add(style)
                count += len(events)
                self.position = position
            return count

    def take_due(self, held: Collection[int] = ()) -> tuple[int, dict[int, str | None], list[int]]:
        """(position, text per due style, the due styles `held` back), as of the last fold.

        Taken styles are no longer due; held ones stay due. Every style is due the first time.
        """
        with self._lock:
            due = set(self.documents.styles()) if self._dirty is None else self._dirty
            waiting = sorted(due.intersection(held))
            self._dirty = set(waiting)
            texts = {s: self.documents.render(s) for s in sorted(due.difference(waiting))}
            return self.position, texts, waiting

    def keep_texts(self) -> None:
        """Keep each entry's text between renders (a server renders the same styles again and again)."""
        with self._lock:
            self.documents.keep_texts = True

    def mark_due(self, styles: Collection[int]) -> None:
        """These styles' texts were taken but not written: they are due again."""
        with self._lock:
            if self._dirty is not None:
                self._dirty.update(styles)

    def reset(self) -> None:
        """Forget everything folded: the next fold reads the whole log, and every style is due."""
        with self._lock:
            self.documents = StyleDocuments(keep_texts=self.documents.keep_texts)
            self.position = 0
            self._dirty = None

    def document(self, style_id: int) -> str | None:
        """The style's current text, as its file has it or will within the writer's next turn."""
        self.fold()
        with self._lock:
            return self.documents.render(style_id)

    def styles(self) -> list[int]:
        """Every style with a version, as of now."""
        self.fold()
        with self._lock:
            return self.documents.styles()

    def status_summary(self) -> StatusSummary:
        """How many versions there are by subject kind and status, and when the oldest pending
        training was requested, as of now."""
        self.fold()
        summary = StatusSummary()
        with self._lock:
            for style_id in self.documents.styles():
                for version in self.documents.versions(style_id):
                    status = str(version.status or "unknown")
                    key = (SUBJECT_KIND, status)
                    summary.versions[key] = summary.versions.get(key, 0) + 1
                    requested = version.entry.get("timestamp")
                    if status == "pending" and isinstance(requested, str):
                        summary.pending_since.append(requested)
        return summary

    def pending_versions(self) -> list[tuple[int, str]]:
        """(style, version name) of every version whose training is pending, as of now."""
        self.fold()
        with self._lock:
            return [
                (version.style_id, version.version_name)
                for style_id in self.documents.styles()
                for version in self.documents.versions(style_id)
                if version.status == "pending"
            ]

    def subject_summaries(self) -> list[SubjectSummary]:
        """Every style with a version, as of now, by style id."""
        self.fold()
        with self._lock:
            return [self._summary(style_id) for style_id in self.documents.styles()]

    def subject_summary(self, style_id: int) -> SubjectSummary | None:
        """The style's summary as of now; None when it has no version."""
        self.fold()
        with self._lock:
            return self._summary(style_id) if self.documents.versions(style_id) else None

    def _summary(self, style_id: int) -> SubjectSummary:
        by_status: dict[str, int] = {}
        last: datetime | None = None
        events = 0
        for version in self.documents.versions(style_id):
            status = str(version.status or "unknown")
            by_status[status] = by_status.get(status, 0) + 1
            events += version.version  # an aggregate's version counts its events
            if last is None or version.modified_on > last:
                last = version.modified_on
        return SubjectSummary(style_id, by_status, last, events)
