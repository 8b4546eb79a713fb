"""Finding and reading legacy `training_versions.json` files on disk.

A single file takes its style id from `--style`, else from its folder (`1/` or `1_ink_intensity/`).
A folder is walked for files named `training_versions.json`, each styled by its folder's name.
Actors' files (`kind` actor, CONTRACT §8) are found the same way, in folders named `<id>` or
`<id>_<slug>` with the id zero-padded (`0006_european_20_female/`), and as `<id>.json` files
(the deployment's `data/actor_training_versions/6.json`).
Every file is resolved (links followed) and must stay inside the tree being imported (for a single
file: its own folder), and each style may come from one file only; a file that breaks either rule
is refused with the reason, and only it (and the files it clashes with).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from loraledger.domain.legacy import LegacyDocumentError, LegacyPlan, parse_document, plan_document
from loraledger.domain.naming import NameRejected, parse_style_id
from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind

DOCUMENT_NAME = "training_versions.json"
MAX_DOCUMENT_BYTES = 50_000_000
_STYLE_FOLDER = re.compile(r"([^_]+)(?:_.*)?")
_ACTOR_ID = re.compile(r"0|[1-9][0-9]{0,8}|0[0-9]{3}")  # unpadded, or padded to 4 digits
_ACTOR_FILE = re.compile(r"([0-9]+)\.json")


@dataclass(frozen=True, slots=True)
class LegacyFile:
    """One file to read, with its style id, or the reason it has none."""

    path: Path
    style_id: int | None  # the subject's id, of kind `kind`
    problem: str | None = None
    real_path: Path | None = None  # where the path leads, checked to be inside the tree
    kind: SubjectKind = STYLE


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A file read and planned (`plan`), or why it cannot be imported (`errors`)."""

    path: Path
    plan: LegacyPlan | None
    errors: tuple[str, ...] = ()


def style_from_folder(folder_name: str) -> int:
    """`1` or `1_ink_intensity` -> 1; other names are rejected with the reason."""
    match = _STYLE_FOLDER.fullmatch(folder_name)
    if match is None:
        raise NameRejected(f"folder {folder_name!r} is not named <id> or <id>_<slug>")
    try:
        return parse_style_id(match.group(1))
    except NameRejected as rejected:
        raise NameRejected(
            f"folder {folder_name!r} is not named <id> or <id>_<slug>: {rejected.reason}"
        ) from None


def actor_from_name(name: str) -> int:
    """`6`, `0006`, `0006_european_20_female` or `6.json` -> 6; other names are rejected."""
    stem = name.removesuffix(".json")
    head = stem.split("_", 1)[0]
    if not _ACTOR_ID.fullmatch(head) or (name.endswith(".json") and head != stem):
        raise NameRejected(f"{name!r} is not named <id>, <id>_<slug> or <id>.json (the id padded or not)")
    return int(head)


def find_legacy_files(path: Path, style_id: int | None, kind: SubjectKind = STYLE) -> Iterator[LegacyFile]:
    """The files under `path` (a file or a folder tree), each with its subject id (of `kind`) or
    why it has none.

    `style_id` is the subject of a single file (or of the one directly in the folder given); in a
    tree of subject folders it picks that subject's folder, and no other file."""
    if path.is_file():
        found = [_inside(path.parent, _styled(path, style_id, kind))]
    elif path.is_dir():
        files = {file for file in path.rglob(DOCUMENT_NAME) if file.is_file()}
        if kind == ACTOR:
            files.update(file for file in path.rglob("*.json") if _ACTOR_FILE.fullmatch(file.name))
        found = [
            _inside(path, _styled(file, style_id if file.parent == path else None, kind))
            for file in sorted(files)
            if file.is_file()
        ]
        if style_id is not None:
            found = [file for file in found if file.style_id == style_id]
    else:
        raise FileNotFoundError(f"{path} is neither a file nor a folder")
    yield from _one_file_per_style(found)


def _inside(root: Path, found: LegacyFile) -> LegacyFile:
    """The file with where it really is, or refused when that is outside `root` (a link out)."""
    real_root, real = root.resolve(), found.path.resolve()
    if not real.is_relative_to(real_root):
        return LegacyFile(
            found.path,
            found.style_id,
            f"leads to {real}, outside {real_root}: a link out of the tree",
            kind=found.kind,
        )
    return replace(found, real_path=real)


def _one_file_per_style(found: list[LegacyFile]) -> list[LegacyFile]:
    """Two files of one style (`1_a/`, `1_b/`) would mix their entries into one file: both refused."""
    by_style: dict[int, list[LegacyFile]] = {}
    for file in found:
        if file.style_id is not None and file.problem is None:
            by_style.setdefault(file.style_id, []).append(file)
    clashes = {id(file): files for files in by_style.values() if len(files) > 1 for file in files}
    return [
        replace(
            file,
            problem=f"{file.kind} {file.style_id} is also claimed by "
            + ", ".join(_where(other) for other in clashes[id(file)] if other is not file)
            + f": one folder per {file.kind}; nothing of {file.kind} {file.style_id} imported",
        )
        if id(file) in clashes
        else file
        for file in found
    ]


def _where(file: LegacyFile) -> str:
    """A file by its folder (`1_a/`), or by itself when its name carries the id (`6.json`)."""
    return str(file.path.parent if file.path.name == DOCUMENT_NAME else file.path)


def _styled(path: Path, style_id: int | None, kind: SubjectKind) -> LegacyFile:
    if style_id is not None:
        return LegacyFile(path, style_id, kind=kind)
    if kind == ACTOR:
        name = path.parent.name if path.name == DOCUMENT_NAME else path.name
        try:
            return LegacyFile(path, actor_from_name(name), kind=kind)
        except NameRejected as rejected:
            return LegacyFile(path, None, f"no actor id: give --actor, or {rejected.reason}", kind=kind)
    try:
        return LegacyFile(path, style_from_folder(path.parent.name))
    except NameRejected as rejected:
        return LegacyFile(path, None, f"no style id: give --style, or {rejected.reason}")


def read_legacy_file(found: LegacyFile) -> ReadResult:
    """Read and plan one file; every problem that stops its import is in `errors`."""
    if found.style_id is None or found.problem is not None:
        return ReadResult(found.path, None, (found.problem or f"no {found.kind} id",))
    if found.real_path is None:  # only find_legacy_files checks where a path leads
        return ReadResult(found.path, None, ("not checked to stay inside the tree",))
    try:
        data = _read_regular_file(found.real_path)
    except _Unreadable as unreadable:
        return ReadResult(found.path, None, (str(unreadable),))
    except OSError as error:
        return ReadResult(found.path, None, (f"cannot read: {error.strerror}",))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return ReadResult(found.path, None, (f"not UTF-8 text: {error.reason} at byte {error.start}",))
    try:
        return ReadResult(found.path, plan_document(found.style_id, parse_document(text), found.kind))
    except LegacyDocumentError as error:
        return ReadResult(found.path, None, tuple(error.problems))


class _Unreadable(Exception):
    """A path that is not a regular file of a sensible size; the message says which."""


def _read_regular_file(real_path: Path) -> bytes:
    """The bytes of the file checked to be inside the tree: never through a link swapped in since
    (O_NOFOLLOW), and only a regular file (a FIFO or a device would block or never end)."""
    descriptor = os.open(real_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise _Unreadable("not a regular file")
        if status.st_size > MAX_DOCUMENT_BYTES:
            raise _Unreadable(f"{status.st_size} bytes is larger than a versions file can be")
        return file.read(MAX_DOCUMENT_BYTES + 1)
