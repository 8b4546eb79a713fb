"""Every S3 file that a sync passed over, recorded once per (key, ETag) with its reason.

One small aggregate, `SkippedFiles`, holds them all: a re-sync reads it once and records only
the skips it does not hold yet, so seeing the same file again records nothing. The version a
skip concerns (a second file of a version that already has its LoRA) also gets it in its history
(`TrainingVersion.LoraSkipped`); this list is what `GET /sync/skipped` answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from loraledger.domain.training_version import LEDGER_NAMESPACE

SKIPPED_FILES_ID: UUID = uuid5(LEDGER_NAMESPACE, "skipped-files")


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """One skip: the file (key, ETag), why it was passed over, by which rule, from which source,
    and the style and version it names when its name could be read."""

    key: str
    etag: str
    reason: str
    rule: str
    source: str
    style_id: int | None
    version: str | None
    skipped_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SkippedFiles(Aggregate):
    TOPIC: ClassVar[str] = "loraledger:SkippedFiles"

    class Created(Aggregate.Created):  # the library's default creation event; unused here
        TOPIC: ClassVar[str] = "loraledger:SkippedFiles.Created"

    class Opened(Aggregate.Created):
        TOPIC: ClassVar[str] = "loraledger:SkippedFiles.Opened"

    def __init__(self) -> None:
        self.skips: dict[tuple[str, str], SkippedFile] = {}  # in the order they were recorded

    @classmethod
    def open(cls) -> SkippedFiles:
        return cls._create(cls.Opened, id=SKIPPED_FILES_ID)

    @property
    def has_new_skips(self) -> bool:
        """Skips recorded since it was read (a list just opened holds none until it records one)."""
        return any(isinstance(event, self.FilesSkipped) for event in self.pending_events)

    def holds(self, key: str, etag: str) -> bool:
        return (key, etag) in self.skips

    class FilesSkipped(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:SkippedFiles.FilesSkipped"
        skips: list[dict[str, Any]]

        def apply(self, aggregate: SkippedFiles) -> None:
            for stored in self.skips:
                skip = SkippedFile(**stored)
                aggregate.skips[(skip.key, skip.etag)] = skip

    def record(self, skips: Iterable[SkippedFile]) -> list[SkippedFile]:
        """Record the skips not held yet (one per key and ETag); returns those recorded."""
        new: dict[tuple[str, str], SkippedFile] = {}
        for skip in skips:
            if not self.holds(skip.key, skip.etag):
                new.setdefault((skip.key, skip.etag), skip)
        if new:
            self.trigger_event(self.FilesSkipped, skips=[skip.as_dict() for skip in new.values()])
        return list(new.values())

    def listed(self, style_id: int | None = None) -> list[SkippedFile]:
        """Every skip recorded, oldest first; only those of one style when it is given."""
        return [s for s in self.skips.values() if style_id is None or s.style_id == style_id]
