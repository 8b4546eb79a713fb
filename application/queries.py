"""Reads of the current state: versions, their names, their history (the files come from projections).

`kind` says whose id `style_id` is: a style's (the default) or an actor's.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.application.store import LedgerStore
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion


class Queries:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def find_version(
        self, style_id: int, version_name: str, kind: SubjectKind = STYLE
    ) -> TrainingVersion | None:
        return self.store.find_version(style_id, version_name, kind)

    def version_names(self, style_id: int, kind: SubjectKind = STYLE) -> list[str]:
        """The subject's versions, newest first; empty for a subject with no history."""
        return self.store.version_names(style_id, kind)

    def style_versions(self, style_id: int, kind: SubjectKind = STYLE) -> list[TrainingVersion]:
        return self.store.style_versions(style_id, kind)

    def history(
        self, style_id: int, version_name: str, kind: SubjectKind = STYLE
    ) -> list[CanMutateAggregate[UUID]]:
        """Every event of the version, oldest first. UnknownVersion if it has none."""
        return self.store.history(style_id, version_name, kind)

    def entry(self, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> dict[str, Any]:
        """The version's entry as the file shows it. UnknownVersion if it has none."""
        return self.store.require_version(style_id, version_name, kind).document_entry()
