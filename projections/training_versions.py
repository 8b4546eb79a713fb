"""Events -> one `training_versions.json` document per style (or per actor: one kind of subject
per set of documents, CONTRACT §8).

The projection replays TrainingVersion events with the aggregate's own `apply` methods, so the file
can never disagree with what the commands saw, and renders each style with `js_stringify`:
the same history always gives the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.domain.naming import version_number
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion, too_deep_warning
from loraledger.projections.js_json import js_stringify, js_stringify_at

TRAINING_VERSION_TOPIC = TrainingVersion.TOPIC + "."
log = logging.getLogger("loraledger")
ENTRY_LEVEL = 2  # {"versions": [entry, ...]}: an entry's members are 2 levels deep


def is_training_version_topic(topic: str) -> bool:
    return topic.startswith(TRAINING_VERSION_TOPIC)


def render_document(versions: Iterable[TrainingVersion]) -> str:
    """The file's text: one entry per version shown, newest version first."""
    ordered = sorted(
        (v for v in versions if not v.hidden), key=lambda v: version_number(v.version_name), reverse=True
    )
    return document_text([entry_text(v) for v in ordered])


def entry_text(version: TrainingVersion) -> str:
    """One version's entry as the file shows it, at its depth in the document."""
    return js_stringify_at(version.document_entry(), ENTRY_LEVEL)


def document_text(entries: list[str]) -> str:
    """The document from its entries' texts: what `js_stringify({"versions": [...]})` gives."""
    if not entries:
        return js_stringify({"versions": []})
    return '{\n  "versions": [\n    ' + ",\n    ".join(entries) + "\n  ]\n}"


class StyleDocuments:
    """The current state of every version of one subject kind (styles unless `kind` says actors),
    grouped by subject id, folded from events in log order; other kinds' events are passed over.

    With `keep_texts` (a server, which renders the same styles again and again), each version's
    entry text is kept until an event changes it, and each style's order until a version is
    added: rendering a style then costs its changed entries and one join, not every entry.
    """

    def __init__(self, *, keep_texts: bool = False, kind: SubjectKind = STYLE) -> None:
        self.kind = kind
        self.other_kind: set[UUID] = set()  # versions of another kind of subject: passed over
        self._versions: dict[UUID, TrainingVersion] = {}
        self._by_style: dict[int, dict[str, TrainingVersion]] = {}
        self.keep_texts = keep_texts
        self._texts: dict[UUID, str] = {}
        self._order: dict[int, list[TrainingVersion]] = {}

    def apply(self, event: CanMutateAggregate[UUID]) -> int | None:
        """Fold one event in; returns the style it touched (None for other aggregates' events)."""
        if not type(event).__qualname__.startswith(TrainingVersion.__qualname__ + "."):
            return None
        if event.originator_id in self.other_kind:
            return None
        current = self._versions.get(event.originator_id)
        version = event.mutate(current)
        assert isinstance(version, TrainingVersion)
        if current is None and version.kind != self.kind:
            self.other_kind.add(event.originator_id)
            return None
        if current is None:
            self._versions[event.originator_id] = version
            self._by_style.setdefault(version.style_id, {})[version.version_name] = version
            self._order.pop(version.style_id, None)
        self._texts.pop(event.originator_id, None)
        warning = too_deep_warning(event)
        if warning is not None:
            log.warning(
                "%s %s %s, %s event: %s",
                version.kind,
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
        if not self.keep_texts:
            return render_document(versions.values())
        order = self._order.get(style_id)
        if order is None:
            order = self._order[style_id] = sorted(
                versions.values(), key=lambda v: version_number(v.version_name), reverse=True
            )
        texts = self._texts
        entries = []
        for version in order:
            if version.hidden:
                continue
            text = texts.get(version.id)
            if text is None:
                text = texts[version.id] = entry_text(version)
            entries.append(text)
        return document_text(entries)
