"""What the projection writer writes through: the sink for documents, the store of the files'
mark, and the scanner that takes in edits someone else made to the files (adapters/files.py is
all three for the live folder)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol


class DocumentSink(Protocol):
    """Where rendered documents go (the atomic file writer, or a folder for `replay`)."""

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        """Write one style's document as of `position` (`"<log id>:<notification id>"`; None
        for a document that is not the log's state at any position, as `replay` writes).

        Returns the path of a backup, if the file had been edited by someone else and was kept.
        """
        ...


class EditScanner(Protocol):
    """Takes in edits someone else made to these styles' files (adapters/files.py FileSink)."""

    def scan(self, styles: Iterable[int]) -> tuple[list[int], list[Path]]:
        """(styles whose file was edited and taken in, backups kept of refused edits)."""
        ...


class MarkStore(Protocol):
    """Where the files' mark is kept (ProjectionFileWriter is one)."""

    @property
    def mark_path(self) -> Path: ...

    def read_mark(self) -> str | None: ...

    def write_mark(self, position: str) -> None: ...

    def clear_mark(self) -> None: ...
