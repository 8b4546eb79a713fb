"""Edits someone else made to a projection file, read into values and handed to the ledger
(CONTRACT §12). The file writer (adapters/files.py) finds them; the rule that decides each change
is domain/file_edits.py; application/file_edits.py records the events.

A file that is not a `{"versions": [...]}` document (half written, broken by hand) records
nothing: it is kept as a backup and reported, and the next write puts the ledger's text back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from loraledger.application.file_edits import FileEditCommands
from loraledger.domain import blobs
from loraledger.domain.errors import LedgerError
from loraledger.domain.subjects import STYLE, SubjectKind

log = logging.getLogger(__name__)


class EditIntake(Protocol):
    """Takes in an edit someone else made to a style's file.

    `base` is the file as this service last wrote it (None when not known); `keep_backup` keeps
    `edited` in the state folder and gives its path. Returns the backup when one was kept.
    """

    def __call__(
        self, style_id: int, path: Path, base: bytes | None, edited: bytes, keep_backup: Callable[[], Path]
    ) -> Path | None: ...


def _versions(data: bytes | None) -> list[Any] | None:
    if data is None:
        return None
    try:
        document = blobs.parse(data)
    except ValueError:
        return None
    versions = document.get("versions") if isinstance(document, dict) else None
    return versions if isinstance(versions, list) else None


class FileEditIntake:
    """The ledger's side of an edit: the entries of both texts, to `FileEditCommands.take_in`."""

    def __init__(self, commands: FileEditCommands, kind: SubjectKind = STYLE) -> None:
        self.commands = commands
        self.kind = kind  # whose files these are: styles' or actors'

    def __call__(
        self, style_id: int, path: Path, base: bytes | None, edited: bytes, keep_backup: Callable[[], Path]
    ) -> Path | None:
        entries = _versions(edited)
        if entries is None:
            backup = keep_backup()
            log.warning(
                "%s was changed by someone else into something that is not a training_versions"
                " document; nothing of it was taken in; kept a copy at %s",
                path,
                backup,
                extra={"backup": str(backup)},
            )
            return backup
        kept: list[Path] = []

        def keep() -> str:
            kept.append(keep_backup())
            return str(kept[-1])

        try:
            report = self.commands.take_in(style_id, str(path), _versions(base), entries, keep, self.kind)
        except (LedgerError, ValueError) as refused:  # an entry no rule can take (a hostile key, …)
            backup = kept[-1] if kept else keep_backup()
            log.warning(
                "%s was changed by someone else in a way that cannot be taken in (%s); nothing of it"
                " was recorded; kept a copy at %s",
                path,
                refused,
                backup,
                extra={"backup": str(backup)},
            )
            return backup
        for decision in report.decisions:
            log.debug(
                "%s: %s %s (%s)",
                path,
                decision.input.get("name", ""),
                decision.outcome,
                decision.rule,
                extra={"decision": decision.as_dict()},
            )
        if report.unusable:
            log.warning("%s: entries not taken in: %s", path, "; ".join(report.unusable))
        return kept[-1] if kept else None
