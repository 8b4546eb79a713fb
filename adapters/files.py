"""The projection's file side: where each style's ``training_versions.json`` lives, and how it is
written.

* :func:`resolve_style_path` turns a layout such as ``{style_id}/training_versions.json`` or
  ``resources/style_images/{style_id}_*/training_versions.json`` into a path that is guaranteed to
  stay inside the output directory (symlinks included).
  It also refuses a path that is another style's file (a link ``2 -> 1`` in the output folder):
  each file belongs to exactly one style.
* :class:`ProjectionFileWriter` writes atomically (temp file in the same folder, fsync,
  ``os.replace``, fsync of the folder), serialises writers of the same file across processes with
  ``flock``, and protects edits made by anyone else: next to each file a hidden sidecar
  ``.<filename>.loraledger`` records the sha256 of the bytes this service last wrote, and a file
  whose bytes match neither that hash nor the new text is copied to
  ``<filename>.external-<UTC stamp>.bak`` before it is replaced.

Files in a style folder, for ``training_versions.json``::

    training_versions.json                 the projection
    .training_versions.json.loraledger     "sha256:<hex> position:<log>:<n> style:<id>": the bytes
                                           last written, the log position they reflect (none for
                                           replay), the style they belong to
    .training_versions.json.lock           flock target (never deleted)
    training_versions.json.external-20251014T111028123456Z.bak   copy of an external edit

Writers that do not take the lock (a person's editor, the legacy UI) are not excluded: an edit that
lands between our read and our ``os.replace`` can still be lost. Everything else is caught.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

__all__ = [
    "DEFAULT_LAYOUT",
    "LayoutError",
    "ProjectionFileWriter",
    "WriteResult",
    "resolve_style_path",
]

DEFAULT_LAYOUT = "{style_id}/training_versions.json"

_PLACEHOLDER = "{style_id}"
_PICK_SEGMENT = "{style_id}_*"
_SIDECAR_PREFIX = "sha256:"
_POSITION_PREFIX = "position:"
_STYLE_PREFIX = "style:"
_ID_PATTERN = "(0|[1-9][0-9]*)"  # how a style id is spelled in a path (str(int))


class LayoutError(ValueError):
    """A layout is malformed, or resolves to a path outside the output directory."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of :meth:`ProjectionFileWriter.write`.

    ``changed`` is False when the file already held exactly the new bytes (it was not rewritten),
    or when it already held a later state of the same log (``superseded``: another process wrote it).
    ``backup`` is the copy made of an externally edited file, or None.
    """

    path: Path
    changed: bool
    backup: Path | None = None
    superseded: bool = False


# --------------------------------------------------------------------------- layout


def _parse_layout(layout: str) -> tuple[str, ...]:
    """Check a layout's syntax (independent of any style id) and split it into segments."""
    if not isinstance(layout, str) or not layout:
        raise LayoutError("layout must be a non-empty relative path such as " + DEFAULT_LAYOUT)
    if layout.startswith("/"):
        raise LayoutError(f"layout {layout!r} is absolute; it must be relative to the output directory")
    if "\\" in layout or "\x00" in layout:
        raise LayoutError(f"layout {layout!r} may not contain backslashes or NUL; use '/'")
    segments = tuple(layout.split("/"))
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment == "":
            raise LayoutError(f"layout {layout!r} has an empty path segment")
        if segment in (".", ".."):
            raise LayoutError(f"layout {layout!r} may not contain a {segment!r} segment")
        if segment == _PICK_SEGMENT:
            if i == last:
                raise LayoutError(
                    f"layout {layout!r}: {_PICK_SEGMENT} picks a directory and cannot be the file name"
                )
            continue
        rest = segment.replace(_PLACEHOLDER, "")
        if "*" in rest:
            raise LayoutError(
                f"layout {layout!r}: '*' is only allowed in a segment that is exactly {_PICK_SEGMENT}"
            )
        if "{" in rest or "}" in rest:
            raise LayoutError(
                f"layout {layout!r}: unknown placeholder in {segment!r}; only {_PLACEHOLDER} is supported"
            )
    if not any(_PLACEHOLDER in segment for segment in segments):
        raise LayoutError(f"layout {layout!r} has no {_PLACEHOLDER}: every style would share one file")
    return segments


def _pick_style_dir(parent: Path, style_id: str) -> str | None:
    """First (sorted) directory name in ``parent`` starting with ``"<style_id>_"``, if any."""
    prefix = style_id + "_"
    try:
        with os.scandir(parent) as entries:
            names = sorted(e.name for e in entries if e.name.startswith(prefix) and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return None
    return names[0] if names else None


def _check_style_id(style_id: int) -> str:
    if isinstance(style_id, bool) or not isinstance(style_id, int):
        raise TypeError(f"style_id must be an int, not {type(style_id).__name__}")
    if style_id < 0:
        raise ValueError(f"style_id must not be negative, got {style_id}")
    return str(style_id)


def _resolve(output_dir: Path, layout: str, segments: tuple[str, ...], style_id: int) -> Path:
    sid = _check_style_id(style_id)
    root = Path(output_dir).resolve()
    current = root
    for segment in segments:
        if segment == _PICK_SEGMENT:
            name = _pick_style_dir(current, sid) or sid
        else:
            name = segment.replace(_PLACEHOLDER, sid)
        current = current / name
    resolved = current.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise LayoutError(
            f"layout {layout!r} for style {style_id} resolves to {resolved}, which is not inside"
            f" the output directory {root}"
        )
    owner = _named_owner(segments, resolved.relative_to(root).parts)
    if owner is not None and owner != style_id:
        raise LayoutError(
            f"the file of style {style_id} ({current}) leads through a link to {resolved},"
            f" which is the file of style {owner}; style {style_id} is not written there"
        )
    return resolved


@lru_cache(maxsize=64)
def _segment_patterns(segments: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for segment in segments:
        if segment == _PICK_SEGMENT:  # "<id>_<anything>", or the bare "<id>" when none existed
            patterns.append(re.compile(_ID_PATTERN + "(?:_.*)?", re.DOTALL))
        else:
            literal = (re.escape(part) for part in segment.split(_PLACEHOLDER))
            patterns.append(re.compile(_ID_PATTERN.join(literal), re.DOTALL))
    return tuple(patterns)


def _named_owner(segments: tuple[str, ...], parts: tuple[str, ...]) -> int | None:
    """The style whose own path (the layout, no link followed) is ``parts``, if any.

    ``1/training_versions.json`` is style 1's file whoever reaches it: a link ``2 -> 1`` must
    not let style 2 overwrite it.
    """
    if len(parts) != len(segments):
        return None
    ids: set[str] = set()
    for pattern, part in zip(_segment_patterns(segments), parts, strict=True):
        match = pattern.fullmatch(part)
        if match is None:
            return None
        ids.update(group for group in match.groups() if group is not None)
    return int(ids.pop()) if len(ids) == 1 else None


def resolve_style_path(output_dir: Path, layout: str, style_id: int) -> Path:
    """Return the resolved path of ``style_id``'s projection file under ``output_dir``.

    ``layout`` is relative and split on ``/``. ``{style_id}`` in a segment is replaced by the id.
    A segment that is exactly ``{style_id}_*`` names the first (sorted) existing directory whose
    name starts with ``"<style_id>_"`` (so ``1_*`` finds ``1_ink_intensity`` but never
    ``11_other``), or ``<style_id>`` when there is none.

    Raises :class:`LayoutError` for absolute layouts, empty, ``.`` or ``..`` segments, unknown
    placeholders or wildcards, and for any result outside ``output_dir`` once symlinks are
    resolved.
    """
    return _resolve(output_dir, layout, _parse_layout(layout), style_id)


# --------------------------------------------------------------------------- low-level file ops


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create a new, uniquely named hidden temp file next to ``path`` (mode 0o666 & ~umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new bytes, never a mix."""
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = _create_temp(path)
    try:
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _backup_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _write_backup(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new ``<name>.external-<stamp>.bak`` next to ``path``; never overwrite."""
    stamp = _backup_stamp()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for n in itertools.count():
        suffix = "" if n == 0 else f"-{n}"
        backup = path.with_name(f"{path.name}.external-{stamp}{suffix}.bak")
        try:
            fd = os.open(backup, flags, 0o666)
        except FileExistsError:
            continue
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(path.parent)
        return backup
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (shared by processes and threads alike)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock; the lock file stays (deleting it would race)


# --------------------------------------------------------------------------- writer


class ProjectionFileWriter:
    """Writes one projection file per style under ``output_dir`` following ``layout``.

    ``log_head`` returns where the event log ends now (``"<log id>:<notification id>"``). With
    it, the log is the truth about the files' marks: a mark the log does not have (ahead of its
    head after a backup of the store was restored, or from another log) does not make a file
    look newer, and the file is rewritten (its content kept as a backup, as for a file someone
    else wrote). Without it (a folder for ``replay``, tests) marks are taken as they are.
    """

    def __init__(
        self,
        output_dir: Path,
        layout: str = DEFAULT_LAYOUT,
        *,
        log_head: Callable[[], str] | None = None,
    ) -> None:
        self._segments = _parse_layout(layout)  # fail at construction, not at first write
        self.output_dir = Path(output_dir)
        self.layout = layout
        self._log_head = log_head

    @property
    def mark_path(self) -> Path:
        return self.output_dir / ".loraledger-projected"

    def read_mark(self) -> str | None:
        """The log position through which every style's file was last brought up to date."""
        raw = _read_or_none(self.mark_path)
        return raw.decode("ascii", "replace").strip() if raw is not None else None

    def write_mark(self, position: str) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.mark_path, position.encode("ascii") + b"\n")

    def clear_mark(self) -> None:
        """Say no more that every file is current (a style's file could not be written)."""
        with suppress(FileNotFoundError):
            os.unlink(self.mark_path)

    def path_for(self, style_id: int) -> Path:
        """Resolved path of ``style_id``'s file (see :func:`resolve_style_path`)."""
        return _resolve(self.output_dir, self.layout, self._segments, style_id)

    def read(self, style_id: int) -> bytes | None:
        """Current bytes of ``style_id``'s file, or None when it does not exist."""
        return _read_or_none(self.path_for(style_id))

    @staticmethod
    def sidecar_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.loraledger")

    @staticmethod
    def lock_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.lock")

    def write(self, style_id: int, text: str, position: str | None = None) -> WriteResult:
        """Atomically make ``style_id``'s file hold ``text`` (UTF-8), backing up external edits.

        ``position`` (``"<log id>:<notification id>"``) is how far into which event log ``text``
        reflects; None when it reflects no current point of the log (``replay``). Several
        processes project the same log; a writer that is behind another one on the same log
        leaves the newer file alone instead of putting an older state back. A file written from
        another log (a new database) is never taken for newer.

        Raises :class:`LayoutError` when the path leaves the output directory or is another
        style's file (by its name, or by its mark for a file reached through a link).
        """
        data = text.encode("utf-8")
        path = self.path_for(style_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.resolve() != path.parent:  # a symlink appeared while creating folders
            raise LayoutError(f"{path.parent} changed while it was being created; not writing")
        with _exclusive_lock(self.lock_path(path)):
            return self._write_locked(style_id, path, data, position)

    def _write_locked(self, style_id: int, path: Path, data: bytes, position: str | None) -> WriteResult:
        sidecar = self.sidecar_path(path)
        raw_mark = _read_or_none(sidecar)
        recorded, recorded_position, owner = _parse_sidecar(raw_mark)
        if owner is not None and owner != style_id and self._owner_by_name(path) != style_id:
            raise LayoutError(
                f"{path} was written for style {owner} (its mark {sidecar.name} says so) and style"
                f" {style_id} also leads there; style {style_id} is not written. Remove the link,"
                f" or the mark if the file now belongs to style {style_id}"
            )
        if recorded_position is not None and position is not None:
            if not self._in_log(recorded_position, position):
                # The log is the truth: a mark it does not have says nothing about the bytes.
                recorded = recorded_position = None
            elif _is_ahead(recorded_position, position):
                return WriteResult(path=path, changed=False, backup=None, superseded=True)
        current = _read_or_none(path)
        mark = _sidecar_text(_sha256(data), position, style_id)
        if current == data:
            if raw_mark != mark:
                _atomic_write(sidecar, mark)
            return WriteResult(path=path, changed=False, backup=None)
        backup: Path | None = None
        # A file equal to the new text but for a trailing newline (how legacy files were saved)
        # loses nothing when replaced; any other difference is someone else's edit.
        if current is not None and _sha256(current) != recorded and current.rstrip(b"\n") != data:
            backup = _write_backup(path, current)
        _atomic_write(path, data)
        _atomic_write(sidecar, mark)
        return WriteResult(path=path, changed=True, backup=backup)

    def _owner_by_name(self, path: Path) -> int | None:
        root = self.output_dir.resolve()
        return _named_owner(self._segments, path.relative_to(root).parts)

    def _in_log(self, recorded: str, offered: str) -> bool:
        """Whether the event log has the position a file's mark records.

        Only a mark ahead of the offered position costs a look at the log's head: that is a
        newer file from another process, or a mark the log never reached (a restored backup).
        """
        recorded_at, offered_at = _parse_position(recorded), _parse_position(offered)
        if recorded_at is None or offered_at is None or recorded_at[0] != offered_at[0]:
            return False
        if recorded_at[1] <= offered_at[1] or self._log_head is None:
            return True
        head = _parse_position(self._log_head())
        return head is not None and head[0] == recorded_at[0] and recorded_at[1] <= head[1]


def _parse_sidecar(raw: bytes | None) -> tuple[str | None, str | None, int | None]:
    """The recorded sha256 hex digest, log position and style; None for what is missing or unreadable."""
    if raw is None:
        return None, None, None
    fields = raw.decode("ascii", "replace").split()
    digest = fields[0][len(_SIDECAR_PREFIX) :] if fields and fields[0].startswith(_SIDECAR_PREFIX) else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None, None, None
    position = owner = None
    for field in fields[1:]:
        if field.startswith(_POSITION_PREFIX):
            position = field[len(_POSITION_PREFIX) :]
        elif field.startswith(_STYLE_PREFIX) and field[len(_STYLE_PREFIX) :].isdigit():
            owner = int(field[len(_STYLE_PREFIX) :])
    return digest, position, owner


def _parse_position(position: str) -> tuple[str, int] | None:
    """``"<log id>:<notification id>"`` as (log id, id); None when it is not that."""
    log_id, _, number = position.rpartition(":")
    if not log_id or not number.isdigit():
        return None
    return log_id, int(number)


def _is_ahead(recorded: str | None, offered: str | None) -> bool:
    """Whether the file already reflects a later point of the same log than `offered`."""
    if recorded is None or offered is None:
        return False
    recorded_at, offered_at = _parse_position(recorded), _parse_position(offered)
    if recorded_at is None or offered_at is None or recorded_at[0] != offered_at[0]:
        return False
    return recorded_at[1] > offered_at[1]


def _sidecar_text(digest: str, position: str | None, style_id: int) -> bytes:
    fields = [f"{_SIDECAR_PREFIX}{digest}"]
    if position is not None:
        fields.append(f"{_POSITION_PREFIX}{position}")
    fields.append(f"{_STYLE_PREFIX}{style_id}")
    return (" ".join(fields) + "\n").encode("ascii")
