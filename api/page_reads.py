"""What the pages show, read through the facade: a style's file now and at an earlier time, and a
version's timeline as the history JSON tells it (CONTRACT §7) with the entry after each event."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loraledger.api.render import event_json
from loraledger.application.queries import Queries
from loraledger.domain.entry_changes import FieldChange, VersionChange, document_changes


@dataclass(frozen=True, slots=True)
class StyleView:
    """A style's entries as its file has them (at `at` when given) and, then, what changed since."""

    style_id: int
    entries: list[dict[str, Any]]
    at: datetime | None = None
    changes_since: list[VersionChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One event as the history JSON has it, the entry after it (None: hidden), what it changed."""

    event: dict[str, Any]
    entry: dict[str, Any] | None
    changes: list[FieldChange]

    @property
    def data_text(self) -> str:
        return pretty_json(self.event["data"])

    @property
    def entry_text(self) -> str:
        return pretty_json(self.entry)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def style_view(
    queries: Queries, document: str | None, style_id: int, at: datetime | None
) -> StyleView | None:
    """None when the style has no version (now)."""
    if document is None:
        return None
    now: list[dict[str, Any]] = json.loads(document)["versions"]
    if at is None:
        return StyleView(style_id, now)
    then = queries.entries_at(style_id, at)
    return StyleView(style_id, then, at, document_changes(then, now))


def timeline(queries: Queries, style_id: int, version_name: str) -> list[TimelineItem]:
    """Oldest first. UnknownVersion when the version has no event."""
    return [
        TimelineItem(event_json(step.event), step.entry, step.changes)
        for step in queries.timeline(style_id, version_name)
    ]
