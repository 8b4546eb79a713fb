"""The files as they were at a moment of the past (`loraledger replay`), into a folder of their own."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application

from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.projections.runner import read_batches
from loraledger.projections.sinks import DocumentSink
from loraledger.projections.training_versions import StyleDocuments


def first_event_at(log: Application[UUID]) -> datetime | None:
    """The time of the log's first event (None for an empty log)."""
    for _, events in read_batches(log, 0):
        for event in events:
            return event.timestamp
    return None


def replay(
    log: Application[UUID], until: datetime | None, sink: DocumentSink, kind: SubjectKind = STYLE
) -> list[int]:
    """Write every style's (or, by `kind`, actor's) document as it was at `until`; returns the
    subjects written.

    Not through a ProjectionWriter: these are no current state of the log (no position, no
    mark), and a write error stops the replay (the command says so).
    """
    documents = StyleDocuments(kind=kind)
    for _, events in read_batches(log, 0):
        for event in events:
            if until is None or event.timestamp <= until:
                documents.apply(event)
    written = []
    for style_id in documents.styles():
        text = documents.render(style_id)
        if text is not None:
            # No position: an earlier state must never look like the log's current one.
            sink.write(style_id, text, None)
            written.append(style_id)
    return written
