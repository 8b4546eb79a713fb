"""Finding and reading legacy `training_versions.json` files on disk.

A single file takes its style id from `--style`, else from its folder (`1/` or `1_ink_intensity/`).
A folder is walked for files named `training_versions.json`, each styled by its folder's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
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
    """The files under `path` (a file or a folder tree), each with its style id."""
    if path.is_file():
        yield _styled(path, style_id)
        return
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a file nor a folder")
    for found in sorted(path.rglob(DOCUMENT_NAME)):
        if found.is_file():
            yield _styled(found, style_id if found.parent == path else None)


def _styled(path: Path, style_id: int | None) -> LegacyFile:
    if style_id is not None:
        return LegacyFile(path, style_id)
    try:
        return LegacyFile(path, style_from_folder(path.parent.name))
    except NameRejected as rejected:
        return LegacyFile(path, None, f"no style id: give --style, or {rejected.reason}")


def read_legacy_file(found: LegacyFile) -> ReadResult:
    """Read and plan one file; every problem that stops its import is in `errors`."""
    if found.style_id is None:
        return ReadResult(found.path, None, (found.problem or "no style id",))
    try:
        size = found.path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            return ReadResult(found.path, None, (f"{size} bytes is larger than a versions file can be",))
        text = found.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return ReadResult(found.path, None, (f"not UTF-8 text: {error.reason} at byte {error.start}",))
    except OSError as error:
        return ReadResult(found.path, None, (f"cannot read: {error.strerror}",))
    try:
        return ReadResult(found.path, plan_document(found.style_id, parse_document(text)))
    except LegacyDocumentError as error:
        return ReadResult(found.path, None, tuple(error.problems))
