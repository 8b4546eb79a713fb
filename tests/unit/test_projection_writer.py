"""The one write path of the projection files (projections/writer.py), against sinks in memory."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loraledger.application.ledger import Ledger
from loraledger.projections.writer import ProjectionWriter
from tests.unit.test_projection import Clock, _feed, documents, make_ledger


class RecordingSink:
    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        self.calls: list[tuple[int, str | None]] = []

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        self.texts[style_id] = text
        self.calls.append((style_id, position))
        return None


class Marks:
    """The folder's mark, in memory; every change is kept (None: the mark was removed)."""

    mark_path = Path("/nowhere/.loraledger-projected")

    def __init__(self, mark: str | None = None) -> None:
        self.mark = mark
        self.changes: list[str | None] = []

    def read_mark(self) -> str | None:
        return self.mark

    def write_mark(self, position: str) -> None:
        self.mark = position
        self.changes.append(position)

    def clear_mark(self) -> None:
        self.mark = None
        self.changes.append(None)


def make_writer(ledger: Ledger, sink: Any, marks: Marks | None = None, **options: Any) -> ProjectionWriter:
    return ProjectionWriter(ledger.store, sink, marks or Marks(), ledger.queries.style_versions, **options)


def head(ledger: Ledger) -> str:
    return make_writer(ledger, RecordingSink()).head()


def test_incremental_projection_equals_a_rebuild_from_scratch() -> None:
    ledger = make_ledger(Clock())
    sink = RecordingSink()
    writer = make_writer(ledger, sink)
    original = ledger.store.save

    def save_and_catch_up(*args: Any, **kwargs: Any) -> Any:
        recordings = original(*args, **kwargs)
        writer.catch_up()
        return recordings

    ledger.store.save = save_and_catch_up  # type: ignore[method-assign]
    _feed(ledger)

    rebuilt = documents(ledger)
    assert sorted(sink.texts) == rebuilt.styles() == [1, 5]
    for style_id in rebuilt.styles():
        assert sink.texts[style_id] == rebuilt.render(style_id)


class BrokenFolderSink(RecordingSink):
    """A sink whose style 1 cannot be written until `repaired` (a read-only folder, a full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.repaired = False
        self.tries = 0

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        if style_id == 1 and not self.repaired:
            self.tries += 1
            raise OSError(28, "No space left on device")
        return super().write(style_id, text, position)


def test_a_style_that_could_not_be_written_stays_due_and_is_retried_after_doubling_pauses() -> None:
    ledger = make_ledger(Clock())
    ledger.start.request(1, "V1", parameters={})
    ledger.start.request(5, "V1", parameters={})
    sink, now = BrokenFolderSink(), [0.0]
    writer = make_writer(ledger, sink, clock=lambda: now[0])

    first = writer.catch_up()
    assert (first.failed, first.styles_written, first.complete) == ([1], [5], False)
    assert "No space left" in first.errors[1]
    tried_at = []
    for tick in range(1, 49):  # 0.5 s turns, as a server's writer would run with no new event
        now[0] = tick * 0.5
        if writer.catch_up().failed:
            tried_at.append(now[0])
    assert tried_at == [1.0, 3.0, 7.0, 15.0, 23.0]  # pauses 1, 2, 4, then RETRY_MAX_SECONDS (8)

    sink.repaired = True
    assert writer.catch_up().waiting == [1]  # its pause is not over yet
    now[0] = 31.0
    done = writer.catch_up()
    assert (done.styles_written, done.complete) == ([1], True)
    assert sink.texts[1] == documents(ledger).render(1)
    assert writer.catch_up().styles_written == []  # written once, no longer due


class BackupSink(BrokenFolderSink):
    """Style 1 cannot be written; style 5's file had been edited by someone else (kept as a backup)."""

    backup = Path("/styles/5/training_versions.json.external-20251014T111028123456Z.bak")

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        super().write(style_id, text, position)
        return self.backup if style_id == 5 else None


def test_a_failed_style_removes_the_mark_the_others_are_written_and_a_backup_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = make_ledger(Clock())
    ledger.start.request(1, "V1", parameters={})
    ledger.start.request(5, "V1", parameters={})
    sink, marks = BackupSink(), Marks("an old mark")
    writer = make_writer(ledger, sink, marks)

    with caplog.at_level(logging.WARNING, logger="loraledger.projections.writer"):
        result = writer.catch_up()

    assert (result.failed, result.styles_written, result.backups) == ([1], [5], [BackupSink.backup])
    assert marks.mark is None and marks.changes == [None]
    assert [r.getMessage() for r in caplog.records if "someone else" in r.getMessage()] == [
        "a file had been changed by someone else in a way not taken in whole;"
        f" kept a copy at {BackupSink.backup}"
    ]
    assert writer.take_backups() == [BackupSink.backup]
    assert writer.take_backups() == []


def test_the_fast_path_after_a_command_writes_the_bytes_and_mark_a_catch_up_writes() -> None:
    ledger = make_ledger(Clock())
    _feed(ledger)
    before = head(ledger)
    ledger.annotations.annotate(1, "V8", {"note": "after the files were current"}, [])
    ledger.start.request(1, "V12", parameters={"learning_rate": 0.0001}, fields={"selectionSetId": 3})

    # A one-shot command whose files were current as it began (their mark is `before`).
    fast_sink, fast_marks = RecordingSink(), Marks(before)
    make_writer(ledger, fast_sink, fast_marks).after_command({1}, before)
    # Another process folding the whole log.
    full_sink, full_marks = RecordingSink(), Marks()
    make_writer(ledger, full_sink, full_marks).catch_up()

    assert [style for style, _ in fast_sink.calls] == [1]  # rendered from the aggregates only
    assert fast_sink.texts[1].encode() == full_sink.texts[1].encode()
    assert fast_sink.calls[0][1] == full_sink.calls[0][1] == head(ledger)
    assert fast_marks.mark == full_marks.mark == head(ledger)


def test_the_fast_path_is_not_taken_when_the_files_were_not_current() -> None:
    ledger = make_ledger(Clock())
    _feed(ledger)
    before = head(ledger)
    ledger.annotations.annotate(1, "V8", {"note": "x"}, [])
    sink, marks = RecordingSink(), Marks("another log:3")

    make_writer(ledger, sink, marks).after_command({1}, before)

    assert sorted(style for style, _ in sink.calls) == [1, 5]  # a catch-up on every style
    assert marks.mark == head(ledger)


class BlockingSink(RecordingSink):
    """Once `armed`, the next write waits for `release`; counts how many writes run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.armed.is_set() and not self.entered.is_set():
                self.entered.set()
                assert self.release.wait(10), "the test never released the sink"
            time.sleep(0.001)  # widen the window in which a second writer would overlap
            return super().write(style_id, text, position)
        finally:
            with self._lock:
                self.running -= 1


def _position(mark: str) -> int:
    return int(mark.rpartition(":")[2])


def test_rebuild_while_the_background_thread_writes_waits_for_it_and_ends_as_a_fresh_rebuild() -> None:
    ledger = make_ledger(Clock())
    _feed(ledger)
    for style_id in range(20, 26):
        ledger.start.request(style_id, "V1", parameters={"n": style_id})
    sink, marks = BlockingSink(), Marks()
    writer = make_writer(ledger, sink, marks)
    writer.catch_up()
    writer.start_background()
    try:
        sink.armed.set()
        ledger.annotations.annotate(1, "V8", {"note": "the thread writes this"}, [])
        writer.after_command()  # wakes the thread, whose write then blocks
        assert sink.entered.wait(10), "the background thread never wrote"

        rebuilt: list[Any] = []
        rebuilding = threading.Thread(target=lambda: rebuilt.append(writer.rebuild()))
        rebuilding.start()
        ledger.annotations.annotate(5, "V1", {"note": "recorded during the rebuild"}, [])
        ledger.start.request(26, "V1", parameters={})
        assert '"recorded during the rebuild"' in (writer.document(5) or "")  # reads do not wait
        time.sleep(0.2)
        assert rebuilding.is_alive()  # it waits for the thread's turn to end
        sink.release.set()
        rebuilding.join(10)
        assert not rebuilding.is_alive()
    finally:
        writer.close()

    fresh = documents(ledger)
    (result,) = rebuilt
    assert result.styles_written == fresh.styles() and result.complete
    assert sink.most_at_once == 1
    assert {s: sink.texts[s] for s in fresh.styles()} == {s: fresh.render(s) for s in fresh.styles()}
    positions = [_position(m) for m in marks.changes if m is not None]
    assert positions == sorted(positions) and marks.mark == head(ledger)


class OverlapSink(BrokenFolderSink):
    """Style 1 cannot be written; each write waits a little (as an fsync does), counting overlaps."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.now_writing = 0
        self.most_at_once = 0

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        with self.lock:
            self.now_writing += 1
            self.most_at_once = max(self.most_at_once, self.now_writing)
        try:
            time.sleep(0.02)
            return super().write(style_id, text, position)
        finally:
            with self.lock:
                self.now_writing -= 1


def test_a_turn_with_write_threads_writes_several_styles_at_once_and_reports_them_in_order() -> None:
    ledger = make_ledger(Clock())
    for style_id in range(1, 9):
        ledger.start.request(style_id, "V1", parameters={})
    sink = OverlapSink()
    writer = make_writer(ledger, sink, write_threads=4)
    try:
        result = writer.catch_up()
    finally:
        writer.close()

    assert sink.most_at_once > 1
    assert (result.failed, result.styles_written, result.complete) == ([1], list(range(2, 9)), False)
    fresh = documents(ledger)
    assert {s: sink.texts[s] for s in range(2, 9)} == {s: fresh.render(s) for s in range(2, 9)}
