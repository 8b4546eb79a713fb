"""Finding and reading legacy `training_versions.json` files on disk.

A single file takes its style id from `--style`, else from its folder (`1/` or `1_ink_intensity/`).
A folder is walked for files named `training_versions.json`, each styled by its folder's name.
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

DOCUMENT_NAME = "training_versions.json"
MAX_DOCUMENT_BYTES = 50_000_000
_STYLE_FOLDER = re.compile(r"([^_]+)(?:_.*)?")


@dataclass(frozen=True, slots=True)
class LegacyFile:
    """One file to read, with its style id, or the reason it has none."""

    path: Path
    style_id: int | None
    problem: str | None = None
    real_path: Path | None = None  # where the path leads, checked to be inside the tree


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


def find_legacy_files(path: Path, style_id: int | None) -> Iterator[LegacyFile]:
    """The files under `path` (a file or a folder tree), each with its style id or why it has none.

    `style_id` is the style of a single file (or of the one directly in the folder given); in a
    tree of style folders it picks that style's folder, and no other file."""
    if path.is_file():
        found = [_inside(path.parent, _styled(path, style_id))]
    elif path.is_dir():
        found = [
            _inside(path, _styled(file, style_id if file.parent == path else None))
            for file in sorted(path.rglob(DOCUMENT_NAME))
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
            found.path, found.style_id, f"leads to {real}, outside {real_root}: a link out of the tree"
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
            problem=f"style {file.style_id} is also claimed by "
            + ", ".join(str(other.path.parent) for other in clashes[id(file)] if other is not file)
            + f": one folder per style; nothing of style {file.style_id} imported",
        )
        if id(file) in clashes
        else file
        for file in found
    ]


def _styled(path: Path, style_id: int | None) -> LegacyFile:
    if style_id is not None:
        return LegacyFile(path, style_id)
    try:
        return LegacyFile(path, style_from_folder(path.parent.name))
    except NameRejected as rejected:
        return LegacyFile(path, None, f"no style id: give --style, or {rejected.reason}")


def read_legacy_file(found: LegacyFile) -> ReadResult:
    """Read and plan one file; every problem that stops its import is in `errors`."""
    if found.style_id is None or found.problem is not None:
        return ReadResult(found.path, None, (found.problem or "no style id",))
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
        return ReadResult(found.path, plan_document(found.style_id, parse_document(text)))
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
