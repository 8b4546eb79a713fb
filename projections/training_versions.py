"""Events -> one `training_versions.json` document per style.

The projection replays TrainingVersion events with the aggregate's own `apply` methods, so the file
can never disagree with what the commands saw, and renders each style with `js_stringify`:
the same history always gives the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.domain.naming import version_number
from loraledger.domain.training_version import TrainingVersion, too_deep_warning
from loraledger.projections.js_json import js_stringify

TRAINING_VERSION_TOPIC = TrainingVersion.TOPIC + "."
log = logging.getLogger("loraledger")


def is_training_version_topic(topic: str) -> bool:
    return topic.startswith(TRAINING_VERSION_TOPIC)


def render_document(versions: Iterable[TrainingVersion]) -> str:
    """The file's text: one entry per version shown, newest version first."""
    ordered = sorted(
        (v for v in versions if not v.hidden), key=lambda v: version_number(v.version_name), reverse=True
    )
    document: dict[str, Any] = {"versions": [v.document_entry() for v in ordered]}
    return js_stringify(document)


class StyleDocuments:
    """The current state of every version, grouped by style, folded from events in log order."""

    def __init__(self) -> None:
        self._versions: dict[UUID, TrainingVersion] = {}
        self._by_style: dict[int, dict[str, TrainingVersion]] = {}

    def apply(self, event: CanMutateAggregate[UUID]) -> int | None:
        """Fold one event in; returns the style it touched (None for other aggregates' events)."""
        if not type(event).__qualname__.startswith(TrainingVersion.__qualname__ + "."):
            return None
        current = self._versions.get(event.originator_id)
        version = event.mutate(current)
        assert isinstance(version, TrainingVersion)
        if current is None:
            self._versions[event.originator_id] = version
            self._by_style.setdefault(version.style_id, {})[version.version_name] = version
        warning = too_deep_warning(event)
        if warning is not None:
            log.warning(
                "style %s %s, %s event: %s",
                version.style_id,
                version.version_name,
                type(event).__name__,
                warning,
            )
        return version.style_id

    def styles(self) -> list[int]:
        return sorted(self._by_style)

    def versions(self, style_id: int) -> list[TrainingVersion]:
        return list(self._by_style.get(style_id, {}).values())

    def render(self, style_id: int) -> str | None:
        """The style's document, or None when the style has no version."""
        versions = self._by_style.get(style_id)
        if not versions:
            return None
        return render_document(versions.values())
