"""The projection's file side: how each style's (or actor's) ``training_versions.json`` is written
(where it lives is adapters/file_layout.py, re-exported here).

* :class:`ProjectionFileWriter` writes atomically (temp file in the same folder, fsync, an atomic
  exchange with the old file, fsync of the folder), serialises writers of the same file across
  processes with ``flock``, and notices edits made by anyone else: a file whose bytes are
  neither those this service last wrote nor an edit already taken in is handed to the edit
  intake (adapters/file_edit_intake.py: taken in as events, CONTRACT §12) before anything is
  written over it; without an intake (``replay``'s own folder) it is kept as a backup.
* :class:`FileSink` is that writer as the projection's sink (projections/writer.py).

Nothing is written next to the JSON files but the files (and, during a write, its temp file):
the service's own records live in the state folder (adapters/file_state.py).

Over 350 lines because writing a file, taking in the edit found under the write's lock, and
moving a style from its fallback file to its folder share that lock and the file's record: split,
each part would reach into the others' records.

A write that lands while another program writes the same file (the UI does not take our lock)
loses neither: the old file is swapped out atomically (``renameat2(RENAME_EXCHANGE)``) and, if it
is not what was read, taken in as an edit; the next write shows both. Where the exchange is not
available (not Linux), ``os.replace`` is used and that moment is not covered.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from loraledger.adapters.atomic_files import (
    CreatedMeanwhile,
    atomic_write,
    exclusive_lock,
    once_whole,
    read_or_none,
    swap_in,
    write_backup,
)
from loraledger.adapters.file_edit_intake import EditIntake
from loraledger.adapters.file_layout import (
    DEFAULT_LAYOUT,
    FolderMissing,
    LayoutError,
    named_owner,
    parse_fallback,
    parse_layout,
    resolve_fallback,
    resolve_segments,
    resolve_style_path,
)
from loraledger.adapters.file_state import (
    LEGACY_MARK_NAME,
    FileRecord,
    FileState,
    is_ahead,
    parse_position,
    remove_legacy_litter,
    sha256,
    stat_key,
)
from loraledger.domain.subjects import STYLE, SubjectKind

__all__ = [
    "DEFAULT_LAYOUT",
    "EditIntake",
    "FileSink",
    "FolderMissing",
    "LayoutError",
    "ProjectionFileWriter",
    "ScanResult",
    "WriteResult",
    "resolve_style_path",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of :meth:`ProjectionFileWriter.write`.

    ``changed`` is False when the file already held exactly the new bytes (it was not rewritten),
    when it already held a later state of the same log (``superseded``: another process wrote it),
    or when someone else's edit was found and taken in first (``edited``: the text is written on
    the next turn, with the edit's events). ``backup`` is the copy kept of an edited file, or None.
    """

    path: Path
    changed: bool
    backup: Path | None = None
    superseded: bool = False
    edited: bool = False


@dataclass(slots=True)
class ScanResult:
    """Styles whose file someone else had edited (taken in), and backups kept of refused edits."""

    edited: list[int] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)


class ProjectionFileWriter:
    """Writes one projection file per style under ``output_dir`` following ``layout``; records in
    ``state_dir`` (None: ``replay``'s own folder, no records, locks or edit protection).

    ``log_head`` gives where the log ends (``"<log id>:<n>"``): a mark the log does not have (a
    restored backup of the store, another log) does not make a file look newer. ``intake`` takes
    in edits made by someone else; without it such a file is kept as a backup. ``fallback`` is
    where the file of a style whose ``{style_id}_*`` folder is missing goes (CONTRACT §12); without
    it that file waits (:class:`FolderMissing`) until the folder appears.
    """

    def __init__(
        self,
        output_dir: Path,
        layout: str = DEFAULT_LAYOUT,
        *,
        state_dir: Path | None = None,
        log_head: Callable[[], str] | None = None,
        intake: EditIntake | None = None,
        fallback: str | None = None,
        kind: SubjectKind = STYLE,  # whose files: styles' (`{style_id}` layouts) or actors'
    ) -> None:
        self._segments = parse_layout(layout, f"{kind}_id")  # fail at construction, not at first write
        self.fallback = parse_fallback(fallback) if fallback is not None else None
        self.output_dir = Path(output_dir)
        self.layout = layout
        self.state = FileState(state_dir, self.output_dir) if state_dir is not None else None
        self._log_head = log_head
        self.intake = intake
        self._looked: dict[int, tuple[Path, str | None]] = {}  # per style: its path, its stat as known

    @property
    def mark_path(self) -> Path:
        if self.state is None:
            return self.output_dir / LEGACY_MARK_NAME  # never written: replay keeps no mark
        return self.state.mark_path

    def read_mark(self) -> str | None:
        """The log position through which every style's file was last brought up to date."""
        if self.state is None:
            return None
        raw = read_or_none(self.mark_path)
        return raw.decode("ascii", "replace").strip() if raw is not None else None

    def write_mark(self, position: str) -> None:
        if self.state is None:
            return
        self.mark_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.mark_path, position.encode("ascii") + b"\n")
        with suppress(FileNotFoundError):  # where earlier releases kept it
            os.unlink(self.output_dir / LEGACY_MARK_NAME)

    def clear_mark(self) -> None:
        """Say no more that every file is current (a style's file could not be written)."""
        if self.state is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.mark_path)

    def path_for(self, style_id: int) -> Path:
        """Resolved path of ``style_id``'s file (see :func:`resolve_style_path`): the fallback
        when its folder is missing and a fallback is set; FolderMissing when none is."""
        try:
            return resolve_segments(self.output_dir, self.layout, self._segments, style_id)
        except FolderMissing:
            if self.fallback is None:
                raise
            return resolve_fallback(self.output_dir, self.fallback, style_id)

    def waiting_reason(self, style_id: int) -> str | None:
        """Why the style's file cannot be written yet (its folder is missing, no fallback is set)."""
        try:
            self.path_for(style_id)
        except FolderMissing as missing:
            return str(missing)
        except (LayoutError, OSError):
            return None  # not waiting: refused, and said so when it is written
        return None

    def read(self, style_id: int) -> bytes | None:
        """Current bytes of ``style_id``'s file, or None when it does not exist."""
        return read_or_none(self.path_for(style_id))

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        if self.state is None:
            yield
            return
        with exclusive_lock(self.state.lock_path(path)):
            yield

    # ------------------------------------------------------------------ writing

    def write(self, style_id: int, text: str, position: str | None = None) -> WriteResult:
        """Atomically make ``style_id``'s file hold ``text`` (UTF-8), taking in edits first.

        ``position`` (``"<log id>:<notification id>"``) is how far into which event log ``text``
        reflects; None when it reflects no current point of the log (``replay``). A writer that
        is behind another one on the same log leaves the newer file alone.

        Raises :class:`LayoutError` when the path leaves the output directory or is another
        style's file (by its name, or by its record for a file reached through a link).
        """
        data = text.encode("utf-8")
        path = self.path_for(style_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.resolve() != path.parent:  # a symlink appeared while creating folders
            raise LayoutError(f"{path.parent} changed while it was being created; not writing")
        with self._locked(path):
            result = self._write_locked(style_id, path, data, position)
        if self.fallback is not None and result.changed:
            self._drop_fallback_copy(style_id, path)
        return result

    def _drop_fallback_copy(self, style_id: int, path: Path) -> None:
        """The style's folder appeared: the copy this service wrote at the fallback goes (a copy
        someone else wrote or changed since is left, and said so)."""
        assert self.fallback is not None
        old = resolve_fallback(self.output_dir, self.fallback, style_id)
        if old == path or self.state is None:
            return
        with self._locked(old):
            current = read_or_none(old)
            if current is None:
                return
            record = self.state.read(old)
            if record.owner != style_id or not record.knows(sha256(current)):
                log.warning("style %s: %s was not written by this service as it is; left", style_id, old)
                return
            os.unlink(old)
            for kept in (self.state.record_path(old), self.state.written_path(old)):
                with suppress(FileNotFoundError):
                    os.unlink(kept)
        log.info("style %s: its folder appeared; the fallback copy %s was removed", style_id, old)

    def _write_locked(self, style_id: int, path: Path, data: bytes, position: str | None) -> WriteResult:
        state = self.state
        record = state.read(path) if state is not None else FileRecord()
        if record.owner is not None and record.owner != style_id and self._owner_by_name(path) != style_id:
            raise LayoutError(
                f"{path} was written for style {record.owner} (its record in the state folder says"
                f" so) and style {style_id} also leads there; style {style_id} is not written."
                f" Remove the link, or the record if the file now belongs to style {style_id}"
            )
        if record.position is not None and position is not None:
            if not self._in_log(record.position, position):
                record = FileRecord()  # the log is the truth: a mark it does not have says nothing
            elif is_ahead(record.position, position):
                return WriteResult(path=path, changed=False, backup=None, superseded=True)
        current = read_or_none(path)
        if current == data:
            if state is not None:
                self._remember(path, record, data, position, style_id)
            return WriteResult(path=path, changed=False, backup=None)
        backup: Path | None = None
        if current is not None and not record.knows(sha256(current)):
            # Equal but for a trailing newline (how legacy files were saved): nothing to lose.
            if record.digest is None or self.intake is None or state is None:
                if current.rstrip(b"\n") != data and state is not None:
                    backup = write_backup(state.backup_folder(path), path, current)
            else:
                backup = self._take_in(style_id, path, record, current)
                return WriteResult(path=path, changed=False, backup=backup, edited=True)
        try:
            replaced = swap_in(path, data, expect_existing=current is not None)
        except CreatedMeanwhile:
            if state is None or self.intake is None:
                raise
            created = read_or_none(path) or b""
            return WriteResult(path, False, self._take_in(style_id, path, record, created), edited=True)
        if state is not None:
            self._remember(path, record, data, position, style_id)
            remove_legacy_litter(path)
        if replaced is not None and replaced != current and state is not None and self.intake is not None:
            # Written by someone else between our read and our swap: taken in, shown next turn.
            meanwhile = state.read(path)
            kept = self._take_in(style_id, path, meanwhile, replaced, base=current)
            return WriteResult(path=path, changed=True, backup=kept or backup, edited=True)
        return WriteResult(path=path, changed=True, backup=backup)

    def _remember(
        self, path: Path, record: FileRecord, data: bytes, position: str | None, style_id: int
    ) -> None:
        assert self.state is not None
        digest = sha256(data)
        written = self.state.written_path(path)
        if record.digest != digest or read_or_none(written) != data:
            written.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(written, data)
        updated = record.with_(digest=digest, position=position, owner=style_id, stat=stat_key(path))
        if updated != record or not self.state.record_path(path).exists():
            atomic_write(self.state.record_path(path), updated.text())
        self._looked[style_id] = (path, updated.stat)

    def _take_in(
        self,
        style_id: int,
        path: Path,
        record: FileRecord,
        edited: bytes,
        base: bytes | None = None,
    ) -> Path | None:
        """Hand an edit to the intake (events recorded), then note it as taken in."""
        assert self.state is not None and self.intake is not None
        state = self.state
        if base is None:
            base = state.written(path, record)
            edited = once_whole(path, edited)

        def keep_backup() -> Path:
            return write_backup(state.backup_folder(path), path, edited)

        backup = self.intake(style_id, path, base, edited, keep_backup)
        now = state.read(path)
        noted = now.with_(
            seen=sha256(edited), stat=stat_key(path) if read_or_none(path) == edited else now.stat
        )
        record_path = state.record_path(path)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(record_path, noted.text())
        return backup

    # ------------------------------------------------------------------ noticing edits

    def scan(self, styles: Iterable[int]) -> ScanResult:
        """Take in every edit someone else made to these styles' files since they were written.

        A file whose stat is as last seen costs one ``stat`` (its path is remembered from the last
        write or look); only a changed one is read.
        """
        result = ScanResult()
        if self.state is None or self.intake is None:
            return result
        for style_id in styles:
            try:
                path, known = self._looked.get(style_id) or (self.path_for(style_id), None)
            except (LayoutError, OSError):
                continue  # told when its file is written
            key = stat_key(path)
            if key is None or key == known or self.state.read(path).stat == key:
                self._looked[style_id] = (path, key)
                continue
            try:
                with self._locked(path):
                    backup = self._scan_locked(style_id, path)
                self._looked[style_id] = (path, stat_key(path))
            except OSError as error:
                log.warning("style %s: %s could not be checked for edits: %s", style_id, path, error)
                continue
            if backup is not False:
                result.edited.append(style_id)
                if isinstance(backup, Path):
                    result.backups.append(backup)
        return result

    def _scan_locked(self, style_id: int, path: Path) -> Path | bool | None:
        """The backup kept (or None) when an edit was taken in; False when there was none."""
        assert self.state is not None
        record = self.state.read(path)
        current = read_or_none(path)
        if current is None or record.digest is None:
            return False  # a file never written here is not an edit of ours; its write backs it up
        if record.knows(sha256(current)):
            key = stat_key(path)
            if key != record.stat:
                atomic_write(self.state.record_path(path), record.with_(stat=key).text())
            return False
        return self._take_in(style_id, path, record, current)

    def _owner_by_name(self, path: Path) -> int | None:
        root = self.output_dir.resolve()
        if not path.is_relative_to(root):
            return None  # a fallback file outside the tree: its record says whose it is
        return named_owner(self._segments, path.relative_to(root).parts)

    def _in_log(self, recorded: str, offered: str) -> bool:
        """Whether the log has a file's recorded position (only a mark ahead of `offered`, from
        another process or a restored backup of the store, costs a look at the log's head)."""
        recorded_at, offered_at = parse_position(recorded), parse_position(offered)
        if recorded_at is None or offered_at is None or recorded_at[0] != offered_at[0]:
            return False
        if recorded_at[1] <= offered_at[1] or self._log_head is None:
            return True
        head = parse_position(self._log_head())
        return head is not None and head[0] == recorded_at[0] and recorded_at[1] <= head[1]


class FileSink:
    """The projection's sink: the atomic writer for one output folder and layout."""

    def __init__(self, files: ProjectionFileWriter) -> None:
        self.files = files

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        return self.files.write(style_id, text, position).backup

    def scan(self, styles: Iterable[int]) -> tuple[list[int], list[Path]]:
        """Edits someone else made to these styles' files, taken in: (styles, backups kept)."""
        found = self.files.scan(styles)
        return found.edited, found.backups
