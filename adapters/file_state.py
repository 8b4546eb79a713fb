"""The projection files' records, kept in the state folder (``LORALEDGER_STATE_DIR``), never next
to the files: per file what this service last wrote (its bytes, their hash, the log position and
style they reflect, the last edit taken in, the file's stat then), its lock, the folder's mark,
and the backups of refused edits. The records of one output folder are kept under
``<state folder>/<output folder name>-<hash of its path>/``::

    projected                                    log position through which every file is current
    files/<path>.mark                            "sha256:<hex> position:<log>:<n> style:<id>
                                                  seen:<hex> stat:<inode>-<size>-<mtime ns>": the
                                                  bytes last written, the log position they
                                                  reflect, the style, the last edit taken in
    files/<path>.written                         the bytes last written (what an edit is compared with)
    files/<path>.lock                            flock target (never deleted)
    backups/<path>.external-<UTC stamp>.bak      an edited file whose edit was refused in part

Files written by earlier releases kept a sidecar ``.<name>.loraledger`` (and ``.<name>.lock``,
``.loraledger-projected``) in the team's folders: they are read once for the hash they record,
and removed when the file is next written.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

_DIGEST = "sha256:"
_POSITION = "position:"
_STYLE = "style:"
_SEEN = "seen:"
_STAT = "stat:"
LEGACY_MARK_NAME = ".loraledger-projected"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def stat_key(path: Path) -> str | None:
    """`<inode>-<size>-<mtime ns>` of a file, None when it is not there: a cheap "has it changed"."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{found.st_ino}-{found.st_size}-{found.st_mtime_ns}"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the service knows of one file it writes."""

    digest: str | None = None  # sha256 of the bytes last written
    position: str | None = None  # "<log id>:<n>" they reflect (None: replay, or unknown)
    owner: int | None = None  # the style they belong to
    seen: str | None = None  # sha256 of the last edit by someone else already taken in
    stat: str | None = None  # the file's stat_key after that write or that edit

    def text(self) -> bytes:
        fields = [f"{_DIGEST}{self.digest or ''}"]
        if self.position is not None:
            fields.append(f"{_POSITION}{self.position}")
        if self.owner is not None:
            fields.append(f"{_STYLE}{self.owner}")
        if self.seen is not None:
            fields.append(f"{_SEEN}{self.seen}")
        if self.stat is not None:
            fields.append(f"{_STAT}{self.stat}")
        return (" ".join(fields) + "\n").encode("ascii")

    def knows(self, digest: str) -> bool:
        """Whether bytes with this hash are ours, or an edit already taken in."""
        return digest in (self.digest, self.seen)

    def with_(self, **changes: object) -> FileRecord:
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_record(raw: bytes | None) -> FileRecord:
    """A record's text; an unreadable record counts as none (the file is then not taken for ours)."""
    if raw is None:
        return FileRecord()
    fields = raw.decode("ascii", "replace").split()
    if not fields or not fields[0].startswith(_DIGEST) or not _is_digest(fields[0][len(_DIGEST) :]):
        return FileRecord()
    values: dict[str, object] = {"digest": fields[0][len(_DIGEST) :]}
    for item in fields[1:]:
        if item.startswith(_POSITION):
            values["position"] = item[len(_POSITION) :]
        elif item.startswith(_STYLE) and item[len(_STYLE) :].isdigit():
            values["owner"] = int(item[len(_STYLE) :])
        elif item.startswith(_SEEN) and _is_digest(item[len(_SEEN) :]):
            values["seen"] = item[len(_SEEN) :]
        elif item.startswith(_STAT):
            values["stat"] = item[len(_STAT) :]
    return FileRecord(**values)  # type: ignore[arg-type]


class FileState:
    """Where the records of one output folder live inside the state folder."""

    def __init__(self, state_dir: Path, output_dir: Path) -> None:
        resolved = Path(os.path.abspath(output_dir))
        tag = sha256(str(resolved).encode())[:8]
        self.output_dir = Path(output_dir)
        self.root = Path(state_dir) / f"{resolved.name or 'root'}-{tag}"

    @property
    def mark_path(self) -> Path:
        return self.root / "projected"

    def _relative(self, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.output_dir.resolve()):
            # A fallback file outside the output folder (CONTRACT §12): kept under its full path.
            return Path("outside", *resolved.parts[1:])
        return resolved.relative_to(self.output_dir.resolve())

    def _in_files(self, path: Path, suffix: str) -> Path:
        relative = self._relative(path)
        return self.root / "files" / relative.parent / f"{relative.name}{suffix}"

    def record_path(self, path: Path) -> Path:
        return self._in_files(path, ".mark")

    def written_path(self, path: Path) -> Path:
        return self._in_files(path, ".written")

    def lock_path(self, path: Path) -> Path:
        target = self._in_files(path, ".lock")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def backup_folder(self, path: Path) -> Path:
        folder = self.root / "backups" / self._relative(path).parent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def read(self, path: Path) -> FileRecord:
        record = parse_record(_read(self.record_path(path)))
        if record.digest is None:  # written by an earlier release: its sidecar next to the file
            record = parse_record(_read(legacy_sidecar(path)))
        return record

    def written(self, path: Path, record: FileRecord) -> bytes | None:
        """The bytes last written, when the record vouches for them."""
        data = _read(self.written_path(path))
        return data if data is not None and record.digest == sha256(data) else None


def legacy_sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.loraledger")


def remove_legacy_litter(path: Path) -> None:
    """The sidecars earlier releases left next to a file, gone now that the state folder holds them."""
    for litter in (legacy_sidecar(path), path.with_name(f".{path.name}.lock")):
        with suppress(FileNotFoundError):
            os.unlink(litter)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def parse_position(position: str) -> tuple[str, int] | None:
    """``"<log id>:<notification id>"`` as (log id, id); None when it is not that."""
    log_id, _, number = position.rpartition(":")
    if not log_id or not number.isdigit():
        return None
    return log_id, int(number)


def is_ahead(recorded: str | None, offered: str | None) -> bool:
    """Whether the file already reflects a later point of the same log than `offered`."""
    if recorded is None or offered is None:
        return False
    recorded_at, offered_at = parse_position(recorded), parse_position(offered)
    if recorded_at is None or offered_at is None or recorded_at[0] != offered_at[0]:
        return False
    return recorded_at[1] > offered_at[1]
