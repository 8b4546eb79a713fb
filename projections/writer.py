"""The one write path of the projection files: each style's document to its file, and the
folder's mark saying through which log position every file is current.

Every write goes through `ProjectionWriter._write`, under one lock: `catch_up` (fold the log,
write the styles due), `after_command` (a one-shot command's fast path: only the styles it
touched, rendered from their aggregates), the background thread of `serve`, and `rebuild`
(the fold reset in place, then a catch-up). So one write turn runs at a time; within it, the
styles' files are handed to the sink by one thread, or by `write_threads` at once, one style per
thread, for a sink that allows it (the file writer: each file is written with fsyncs, which wait on
the disk without holding the GIL, and each style's file under its own lock), a
text already written costs no I/O, a style whose file could not be written stays due and is
tried again after a pause that doubles up to RETRY_MAX_SECONDS (no new event needed), a file
someone else had edited is kept as a backup and reported once, and the mark never moves back
(it is removed while some file is not current, so the next one-shot command catches up on
every style instead of only its own).

Before writing, every turn takes in the edits someone else made to the files (`EditScanner`,
CONTRACT §12): they become events, so the texts written next show them; an edit found during a
write is taken in the same way, and the turn goes round again (at most EDIT_ROUNDS times).
Over 350 lines because every write turn (catch-up, fast path, background thread, rebuild) shares
one lock, one retry state and one mark: split, they would have to share them across modules.

Lock order: `_write_lock`, then the runner's own lock (inside its methods). Reads take only the
runner's lock: they never wait for file I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application

from loraledger.domain.training_version import TrainingVersion
from loraledger.projections.runner import ProjectionRunner, StatusSummary, SubjectSummary, log_identity
from loraledger.projections.sinks import DocumentSink, EditScanner, MarkStore
from loraledger.projections.training_versions import render_document

WRITER_INTERVAL_SECONDS = 1.0
WRITER_COALESCE_SECONDS = 0.1
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 8.0
EDIT_ROUNDS = 3
log = logging.getLogger(__name__)


@dataclass(slots=True)
class CatchUp:
    """What one write turn did.

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


def log_head(log: Application[UUID]) -> str:
    """Where the log ends now, in the form the files' marks use (`"<log id>:<notification id>"`)."""
    return f"{log_identity(log)}:{log.recorder.max_notification_id() or 0}"


class ProjectionWriter:
    """Keeps every style's file current with the log (see the module's docstring).

    `versions_of(style_id)` gives a style's current aggregates, for the fast path.
    """

    def __init__(
        self,
        log: Application[UUID],
        sink: DocumentSink,
        marks: MarkStore,
        versions_of: Callable[[int], Iterable[TrainingVersion]],
        *,
        clock: Callable[[], float] = time.monotonic,
        edits: EditScanner | None = None,
        write_threads: int = 1,
    ) -> None:
        self.log = log
        self._edits = edits
        self.sink = sink
        self.marks = marks
        self._versions_of = versions_of
        self._clock = clock
        self._runner = ProjectionRunner(log)
        self._write_lock = threading.Lock()
        self._log_id: str | None = None
        self._written: dict[int, str] = {}  # what was last handed the sink, per style
        self._retry: dict[int, tuple[int, float]] = {}  # failed styles: (failures, next try at)
        self._backups: list[Path] = []
        self._backups_lock = threading.Lock()
        self._wake: threading.Event | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_threads = write_threads
        self._pool: ThreadPoolExecutor | None = None  # made at the first turn with several files
        self._current_through = 0  # every file holds the log's state through this position

    # ------------------------------------------------------------------ writing

    def catch_up(self) -> CatchUp:
        """Fold what is new in the log, then write every style due; a file someone else had
        changed is kept and reported."""
        with self._write_lock:
            return self._catch_up()

    def renderer(self, texts: dict[int, str]) -> Callable[[int, Iterable[TrainingVersion]], None] | None:
        """For a one-shot command that holds a style's versions as it saved them: renders each
        style into `texts`, for `after_command`, so they are not read again. None in server mode,
        where the background thread folds the log instead."""
        if self._wake is not None:
            return None

        def render(style_id: int, versions: Iterable[TrainingVersion]) -> None:
            texts[style_id] = render_document(versions)

        return render

    def after_command(
        self,
        touched: Iterable[int] | None = None,
        before: str | None = None,
        texts: Mapping[int, str] | None = None,
    ) -> None:
        """After a command: wake the background thread (server); else write now.

        A one-shot command that says which styles it `touched` renders only those, from their
        aggregates (or takes their `texts`, rendered by `renderer`), when the files were current
        (their mark equals `before`, the head as the command began); otherwise (a run killed
        before it wrote, events from elsewhere) it catches up on the whole log.
        """
        if self._wake is not None:
            self._wake.set()
            return
        with self._write_lock:
            edited = self._take_in_edits()
        if edited or touched is None or before is None or self.marks.read_mark() != before:
            self.catch_up()
            return
        styles = sorted(set(touched))
        if not styles:
            return
        with self._write_lock:
            position = self.log.recorder.max_notification_id() or 0
            given = texts or {}
            rendered = {s: given[s] if s in given else render_document(self._versions_of(s)) for s in styles}
            self._write(rendered, position, self._clock())

    def rebuild(self) -> CatchUp:
        """Every style's file regenerated from the whole history (`failed`: styles not writable).

        The fold is reset in place under the write lock: the background thread finishes its turn
        before, or starts its next one after, and finds nothing left to write.
        """
        with self._write_lock:
            self._runner.reset()
            self._written.clear()
            self._retry.clear()
            return self._catch_up()

    def _catch_up(self) -> CatchUp:
        events = 0
        for _ in range(EDIT_ROUNDS):
            self._take_in_edits()
            events += self._runner.fold()
            now = self._clock()
            held = [style_id for style_id, (_, next_try) in self._retry.items() if next_try > now]
            position, texts, waiting = self._runner.take_due(held)
            result = self._write(texts, position, now, waiting)
            if (self.log.recorder.max_notification_id() or 0) == position:
                break  # nothing was recorded meanwhile (an edit taken in during a write would be)
        result.events = events
        return result

    def _take_in_edits(self) -> list[int]:
        """Edits someone else made to the files since they were written, taken in as events.

        Called with `_write_lock` held."""
        if self._edits is None:
            return []
        try:
            edited, backups = self._edits.scan(self._runner.styles())
        except (OSError, ValueError) as error:
            log.warning("the files could not be checked for edits: %s", error)
            return []
        self._report_backups(backups)
        return edited

    def wake(self) -> None:
        """A file changed (the watcher says so): look at it now rather than on the next tick."""
        if self._wake is not None:
            self._wake.set()

    def _write(
        self, texts: Mapping[int, str | None], position: int, now: float, waiting: Collection[int] = ()
    ) -> CatchUp:
        """Hand the sink each text it was not last handed; report backups; move or clear the mark.

        Called with `_write_lock` held.
        """
        result = CatchUp(position, waiting=list(waiting))
        at = f"{self._identity()}:{position}"
        # Events that changed nothing in a file (a repeated webhook) cost no I/O.
        changed = [(s, t) for s, t in texts.items() if t is not None and self._written.get(s) != t]
        for (style_id, text), outcome in zip(changed, self._hand_over(changed, at), strict=True):
            if isinstance(outcome, OSError | ValueError):  # a read-only folder, a full disk, a link
                self._failed(style_id, outcome, now, result)
                continue
            backup = outcome
            self._retry.pop(style_id, None)
            self._written[style_id] = text
            result.styles_written.append(style_id)
            if backup is not None:
                result.backups.append(backup)
        if result.failed:
            self._runner.mark_due(result.failed)  # still due: written on a later turn
        self._report_backups(result.backups)
        self._mark(at if result.complete else None)
        if result.complete:
            self._current_through = max(self._current_through, position)
        return result

    def _hand_over(self, changed: list[tuple[int, str]], at: str) -> list[Path | OSError | ValueError | None]:
        """Each style's text to the sink (several styles at once); per style, the backup it kept
        or the error that stopped it, in the order given."""

        def write(style_id: int, text: str) -> Path | OSError | ValueError | None:
            try:
                return self.sink.write(style_id, text, at)
            except (OSError, ValueError) as error:
                return error

        if len(changed) <= 1 or self._write_threads <= 1:
            return [write(style_id, text) for style_id, text in changed]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._write_threads, thread_name_prefix="projection-file")
        return list(self._pool.map(lambda item: write(*item), changed))

    def _failed(self, style_id: int, error: Exception, now: float, result: CatchUp) -> None:
        failures = self._retry.get(style_id, (0, now))[0] + 1
        pause = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (failures - 1))
        self._retry[style_id] = (failures, now + pause)
        result.failed.append(style_id)
        result.errors[style_id] = str(error)
        log.error("style %s: its file cannot be written (try %d): %s", style_id, failures, error)

    def _mark(self, position: str | None) -> None:
        """Record that every file is current through `position`, or (None) that some file is not."""
        try:
            if position is None:
                self.marks.clear_mark()
            else:
                self.marks.write_mark(position)
        except OSError as error:  # the output folder itself is not writable: the styles said so
            log.warning("the output folder's mark %s cannot be updated: %s", self.marks.mark_path, error)

    def _identity(self) -> str:
        """The log's id, read once the log has a first record (it never changes after)."""
        if self._log_id is not None:
            return self._log_id
        identity = log_identity(self.log)
        if identity != "empty":
            self._log_id = identity
        return identity

    def head(self) -> str:
        """Where the log ends now (the form the files' marks use)."""
        return f"{self._identity()}:{self.log.recorder.max_notification_id() or 0}"

    # ------------------------------------------------------------------ backups

    def _report_backups(self, backups: list[Path]) -> None:
        for backup in backups:
            log.warning(
                "a file had been changed by someone else in a way not taken in whole; kept a copy at %s",
                backup,
                extra={"backup": str(backup)},
            )
        with self._backups_lock:
            self._backups.extend(backups)

    def take_backups(self) -> list[Path]:
        """Backups kept since the last call (for the command's answer)."""
        with self._backups_lock:
            taken, self._backups = self._backups, []
        return taken

    # ------------------------------------------------------------------ the background thread

    def start_background(self) -> None:
        """Server mode: files are written by one background thread, woken by each command and
        every second (for events other processes recorded), so a burst of webhooks costs one
        write per style instead of one per request. Reads fold the log first, so they are
        current at once; the files follow within the thread's next turn."""
        self._runner.keep_texts()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="projection-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        assert self._wake is not None
        while not self._stop.is_set():
            self._wake.wait(WRITER_INTERVAL_SECONDS)
            # Let a burst of commands land first: one write then covers them all (the contract
            # gives the file 2 s; reads never wait for it).
            self._stop.wait(WRITER_COALESCE_SECONDS)
            self._wake.clear()
            try:
                self.catch_up()
            except Exception:  # the store may be away for a while: /healthz says so; we go on
                log.warning("writing the projection files failed; retrying", exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._wake is not None and self._thread is not None:
            self._wake.set()
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ reads

    def document(self, style_id: int) -> str | None:
        """The style's current text, as its file has it or will within the writer's next turn."""
        return self._runner.document(style_id)

    def styles(self) -> list[int]:
        return self._runner.styles()

    def pending_versions(self) -> list[tuple[int, str]]:
        return self._runner.pending_versions()

    def status_summary(self) -> StatusSummary:
        return self._runner.status_summary()

    def subject_summaries(self) -> list[SubjectSummary]:
        return self._runner.subject_summaries()

    def subject_summary(self, style_id: int) -> SubjectSummary | None:
        return self._runner.subject_summary(style_id)

    def position(self) -> int:
        """How far into the log the documents are folded (it grows with every new event)."""
        self._runner.fold()
        return self._runner.position

    def oldest_unwritten(self) -> datetime | None:
        """When the oldest event the files do not hold yet was recorded; None when they hold all.

        What this process's writer has written: in server mode its thread writes every event,
        whichever process recorded it, within about a second."""
        after = self._current_through
        if (self.log.recorder.max_notification_id() or 0) <= after:
            return None
        first = self.log.recorder.select_notifications(after + 1, 1)
        if not first:
            return None
        event = self.log.mapper.to_domain_event(first[0])
        moment = getattr(event, "timestamp", None)
        return moment if isinstance(moment, datetime) else None
