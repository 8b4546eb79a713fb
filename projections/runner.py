"""Follows the ledger's notification log and keeps the per-style files current.

One runner per process. It remembers how far it has read; `catch_up()` reads what is new, folds it
into `StyleDocuments` and hands the styles it touched to a sink (the atomic file writer). Commands
call `catch_up()` before they answer, so a 2xx answer is already on disk; a background thread
calls it too, for events written by other processes. A style whose file could not be written stays
due, and is tried again (after a pause that doubles up to RETRY_MAX_SECONDS) until it is written.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import CanMutateAggregate

from loraledger.projections.training_versions import StyleDocuments, is_training_version_topic

READ_BATCH = 2_000
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 8.0
log = logging.getLogger(__name__)


class DocumentSink(Protocol):
    """Where rendered documents go (the atomic file writer, or a folder for `replay`)."""

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        """Write one style's document as of `position` (`"<log id>:<notification id>"`; None
        for a document that is not the log's state at any position, as `replay` writes).

        Returns the path of a backup, if the file had been edited by someone else and was kept.
        """
        ...


@dataclass(slots=True)
class CatchUp:
    """What one `catch_up()` did.

    `styles_written`: styles whose file now holds their state (written, found already holding it,
    or holding a later state another process wrote). `failed`: styles whose file could not be
    written, with the reason in `errors`; `waiting`: styles that failed before and wait for
    their next try. Both stay due: the files are current only when both are empty.
    """

    position: int
    events: int = 0
    styles_written: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every style's file holds the state through `position`."""
        return not self.failed and not self.waiting


def log_identity(ledger: Application[UUID]) -> str:
    """A short id of this event log (from its first record), so positions of two logs never mix."""
    first = ledger.recorder.select_notifications(1, 1)
    if not first:
        return "empty"
    record = first[0]
    digest = hashlib.sha256(str(record.originator_id).encode() + record.topic.encode() + record.state)
    return digest.hexdigest()[:16]


def read_batches(
    ledger: Application[UUID], after: int
) -> Iterator[tuple[int, list[CanMutateAggregate[UUID]]]]:
    """(last notification id read, its TrainingVersion events) per batch after `after`, in log order.

    The position advances over other aggregates' events too, so a reader never reads them twice.
    """
    position = after
    while True:
        batch = ledger.recorder.select_notifications(position + 1, READ_BATCH)
        if not batch:
            return
        position = batch[-1].id
        yield (
            position,
            [
                cast(CanMutateAggregate[UUID], ledger.mapper.to_domain_event(notification))
                for notification in batch
                if is_training_version_topic(notification.topic)
            ],
        )
        if len(batch) < READ_BATCH:
            return


class ProjectionRunner:
    """Folds the log into documents (`fold`) and writes the styles that changed (`flush`).

    Folding is cheap and makes reads current; writing costs file I/O, so a server does it on a
    background thread that coalesces many commands into one write per style, while commands
    and the CLI that must see their files on disk call `catch_up()` (fold, then flush).
    """

    def __init__(
        self, ledger: Application[UUID], sink: DocumentSink, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ledger = ledger
        self.sink = sink
        self.documents = StyleDocuments()
        self.position = 0
        self._clock = clock
        self._fold_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._dirty: set[int] | None = None  # None: nothing written yet, so every style is due
        self._log_id: str | None = None
        self._written: dict[int, str] = {}  # what this runner last handed the sink, per style
        self._retry: dict[int, tuple[int, float]] = {}  # failed styles: (failures, next try at)

    def fold(self) -> int:
        """Read what is new in the log into the documents; returns how many events were read."""
        with self._fold_lock:
            count = 0
            for position, events in read_batches(self.ledger, self.position):
                for event in events:
                    style = self.documents.apply(event)
                    if style is not None and self._dirty is not None:
                        self._dirty.add(style)
                count += len(events)
                self.position = position
            return count

    def flush(self) -> CatchUp:
        """Write every style changed since the last flush (every style, the first time), and
        every style whose file could not be written before once its pause is over."""
        with self._write_lock:
            now = self._clock()
            with self._fold_lock:
                due = set(self.documents.styles()) if self._dirty is None else self._dirty
                waiting = sorted(s for s in due if s in self._retry and self._retry[s][1] > now)
                self._dirty = set(waiting)
                texts = {s: self.documents.render(s) for s in sorted(due.difference(waiting))}
                position = self.position
            result = CatchUp(position, waiting=waiting)
            if texts and self._log_id is None:
                self._log_id = log_identity(self.ledger)
            for style_id, text in texts.items():
                if text is None or self._written.get(style_id) == text:
                    continue  # events that changed nothing in the file (a repeated webhook) cost no I/O
                try:
                    backup = self.sink.write(style_id, text, f"{self._log_id}:{position}")
                except (OSError, ValueError) as error:  # a read-only folder, a full disk, a link
                    self._failed(style_id, error, now, result)
                    continue
                self._retry.pop(style_id, None)
                self._written[style_id] = text
                result.styles_written.append(style_id)
                if backup is not None:
                    result.backups.append(backup)
            if result.failed:
                with self._fold_lock:
                    self._dirty.update(result.failed)  # still due: written on a later turn
            return result

    def _failed(self, style_id: int, error: Exception, now: float, result: CatchUp) -> None:
        failures = self._retry.get(style_id, (0, now))[0] + 1
        pause = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (failures - 1))
        self._retry[style_id] = (failures, now + pause)
        result.failed.append(style_id)
        result.errors[style_id] = str(error)
        log.error("style %s: its file cannot be written (try %d): %s", style_id, failures, error)

    def catch_up(self) -> CatchUp:
        """Fold new events in and write the styles they touched."""
        events = self.fold()
        result = self.flush()
        result.events = events
        return result

    def document(self, style_id: int) -> str | None:
        """The style's current text, as its file has it or will within the writer's next turn."""
        self.fold()
        with self._fold_lock:
            return self.documents.render(style_id)


def replay(ledger: Application[UUID], until: datetime | None, sink: DocumentSink) -> list[int]:
    """Write every style's document as it was at `until`; returns the styles written."""
    documents = StyleDocuments()
    for _, events in read_batches(ledger, 0):
        for event in events:
            if until is None or event.timestamp <= until:
                documents.apply(event)
    written = []
    for style_id in documents.styles():
        text = documents.render(style_id)
        if text is not None:
            # No position: an earlier state must never look like the log's current one.
            sink.write(style_id, text, None)
            written.append(style_id)
    return written
