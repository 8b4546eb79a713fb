"""The projection's file side: where each style's ``training_versions.json`` lives, and how it is
written.

* :func:`resolve_style_path` turns a layout such as ``{style_id}/training_versions.json`` or
  ``resources/style_images/{style_id}_*/training_versions.json`` into a path that is guaranteed to
  stay inside the output directory (symlinks included).
* :class:`ProjectionFileWriter` writes atomically (temp file in the same folder, fsync,
  ``os.replace``, fsync of the folder), serialises writers of the same file across processes with
  ``flock``, and protects edits made by anyone else: next to each file a hidden sidecar
  ``.<filename>.loraledger`` records the sha256 of the bytes this service last wrote, and a file
  whose bytes match neither that hash nor the new text is copied to
  ``<filename>.external-<UTC stamp>.bak`` before it is replaced.

Files in a style folder, for ``training_versions.json``::

    training_versions.json                 the projection
    .training_versions.json.loraledger     "sha256:<hex> position:<n>": bytes last written, log position
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
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
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


class LayoutError(ValueError):
    """A layout is malformed, or resolves to a path outside the output directory."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of :meth:`ProjectionFileWriter.write`.

    ``changed`` is False when the file already held exactly the new bytes (it was not rewritten).
    ``backup`` is the copy made of an externally edited file, or None.
    """

    path: Path
    changed: bool
    backup: Path | None = None


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
    return resolved


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
    """Writes one projection file per style under ``output_dir`` following ``layout``."""

    def __init__(self, output_dir: Path, layout: str = DEFAULT_LAYOUT) -> None:
        self._segments = _parse_layout(layout)  # fail at construction, not at first write
        self.output_dir = Path(output_dir)
        self.layout = layout

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
        reflects. Several processes project the same log; a writer that is behind another one on
        the same log leaves the newer file alone instead of putting an older state back. A file
        written from another log (a new database) is never taken for newer.
        """
        data = text.encode("utf-8")
        path = self.path_for(style_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.resolve() != path.parent:  # a symlink appeared while creating folders
            raise LayoutError(f"{path.parent} changed while it was being created; not writing")
        with _exclusive_lock(self.lock_path(path)):
            return self._write_locked(path, data, position)

    def _write_locked(self, path: Path, data: bytes, position: str | None) -> WriteResult:
        sidecar = self.sidecar_path(path)
        new_digest = _sha256(data)
        recorded, recorded_position = self._read_sidecar(sidecar)
        if _is_ahead(recorded_position, position):
            return WriteResult(path=path, changed=False, backup=None)
        current = _read_or_none(path)
        mark = _sidecar_text(new_digest, position or recorded_position)
        if current == data:
            if recorded != new_digest or (position is not None and position != recorded_position):
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

    @staticmethod
    def _read_sidecar(sidecar: Path) -> tuple[str | None, str | None]:
        """The recorded sha256 hex digest and log position; None for what is missing or unreadable."""
        raw = _read_or_none(sidecar)
        if raw is None:
            return None, None
        fields = raw.decode("ascii", "replace").split()
        digest = fields[0][len(_SIDECAR_PREFIX) :] if fields and fields[0].startswith(_SIDECAR_PREFIX) else ""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None, None
        position = None
        if len(fields) > 1 and fields[1].startswith("position:"):
            position = fields[1][len("position:") :]
        return digest, position


def _is_ahead(recorded: str | None, offered: str | None) -> bool:
    """Whether the file already reflects a later point of the same log than `offered`."""
    if recorded is None or offered is None:
        return False
    recorded_log, _, recorded_id = recorded.rpartition(":")
    offered_log, _, offered_id = offered.rpartition(":")
    if recorded_log != offered_log or not recorded_id.isdigit() or not offered_id.isdigit():
        return False
    return int(recorded_id) > int(offered_id)


def _sidecar_text(digest: str, position: str | None) -> bytes:
    suffix = f" position:{position}" if position is not None else ""
    return f"{_SIDECAR_PREFIX}{digest}{suffix}\n".encode("ascii")
