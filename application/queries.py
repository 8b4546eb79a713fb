"""Reads of the current state: versions, their names, their history (the files come from projections)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.application.store import LedgerStore
from loraledger.domain.skips import SkippedFile
from loraledger.domain.training_version import TrainingVersion


class Queries:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def find_version(self, style_id: int, version_name: str) -> TrainingVersion | None:
        return self.store.find_version(style_id, version_name)

    def version_names(self, style_id: int) -> list[str]:
        """The style's versions, newest first; empty for a style with no history."""
        return self.store.version_names(style_id)

    def style_versions(self, style_id: int) -> list[TrainingVersion]:
        return self.store.style_versions(style_id)

    def history(self, style_id: int, version_name: str) -> list[CanMutateAggregate[UUID]]:
        """Every event of the version, oldest first. UnknownVersion if it has none."""
        return self.store.history(style_id, version_name)

    def entry(self, style_id: int, version_name: str) -> dict[str, Any]:
        """The version's entry as the file shows it. UnknownVersion if it has none."""
        return self.store.require_version(style_id, version_name).document_entry()

    def skipped_files(self, style_id: int | None = None) -> list[SkippedFile]:
        """Every S3 file a sync passed over (once per key and ETag), oldest first."""
        return self.store.skipped_files().listed(style_id)
