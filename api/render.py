"""Answers as people and tools read them: history JSON (CONTRACT §7) and its text form, and the
JSON of the webhook, sync and reconcile answers (CONTRACT §4). Decisions become dicts only here
(and in the events that store them)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.adapters.redaction import escape_controls
from loraledger.api.wording import plural
from loraledger.application.reconcile import ReconcileReport
from loraledger.application.reports import ReportResult
from loraledger.application.sync import SyncReport
from loraledger.domain import blobs
from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind
from loraledger.domain.times import format_time
from loraledger.domain.training_version import HISTORY_BLOB_FIELDS, too_deep_warning

if TYPE_CHECKING:
    from loraledger.api.facade import Rebuilt

_NOT_DATA = {"originator_id", "originator_version", "timestamp", "decision", "originator_topic"}


def event_json(event: CanMutateAggregate[UUID]) -> dict[str, Any]:
    """`type`, `at`, `data`, and `decision` for events that came from a match."""
    data: dict[str, Any] = {}
    for name, value in vars(event).items():
        if name in _NOT_DATA:
            continue
        if name in HISTORY_BLOB_FIELDS and isinstance(value, str):
            data[HISTORY_BLOB_FIELDS[name]] = blobs.load(value)
        else:
            data[name] = value
    answer: dict[str, Any] = {"type": type(event).__name__, "at": format_time(event.timestamp), "data": data}
    decision = getattr(event, "decision", None)
    if decision:
        answer["decision"] = decision
    warning = too_deep_warning(event)
    if warning is not None:
        answer["warning"] = warning
    return answer


def history_json(
    style_id: int, version_name: str, events: list[CanMutateAggregate[UUID]], kind: SubjectKind = STYLE
) -> dict[str, Any]:
    """CONTRACT §7's answer; an actor's names its subject `actor_id` (§8)."""
    return {f"{kind}_id": style_id, "version": version_name, "events": [event_json(e) for e in events]}


def history_text(history: dict[str, Any]) -> str:
    """A readable account: one block per event, the decision's rule and every candidate's why.

    For a terminal: each line's control characters (an S3 key, a worker's error) are escaped, so
    the text has no line breaks and no escape sequences but ours."""
    kind = ACTOR if "actor_id" in history else STYLE
    subject = f"{kind} {history[f'{kind}_id']}"
    lines = [f"{subject} {history['version']}: {plural(len(history['events']), 'event')}"]
    for event in history["events"]:
        data = event["data"]
        headline = ", ".join(
            f"{key}={value}"
            for key, value in data.items()
            if isinstance(value, str | int | float | bool) and key not in ("fingerprint",)
        )
        lines.append(f"{event['at']}  {event['type']}" + (f"  {headline}" if headline else ""))
        decision = event.get("decision")
        if decision:
            lines.append(f"    {decision['source']}: rule {decision['rule']} -> {decision['outcome']}")
            for candidate in decision.get("candidates", []):
                mark = "taken" if candidate["taken"] else "not taken"
                lines.append(
                    f"      {mark}: {candidate['name']} (id {candidate['id']}, {candidate['status']}): "
                    f"{candidate['why']}"
                )
            for note in decision.get("notes", []):
                lines.append(f"      note: {note}")
        if event.get("warning"):
            lines.append(f"    warning: {event['warning']}")
    return "\n".join(escape_controls(line) for line in lines)


def webhook_json(result: ReportResult) -> dict[str, Any]:
    """An actor's job answers `style_id: null` and its `actor_id`: nothing is matched across kinds."""
    actor = result.kind == ACTOR
    answer: dict[str, Any] = {
        "result": result.result.value,
        "style_id": None if actor else result.style_id,
        "version": result.version_name,
        "decisions": [decision.as_dict() for decision in result.decisions],
    }
    if actor:
        answer["actor_id"] = result.style_id
    return answer


def sync_report_json(report: SyncReport) -> dict[str, Any]:
    """The report of CONTRACT §4 (the styles touched and the event count are for the caller)."""
    return {
        "scanned": report.scanned,
        "matched_pending": report.matched_pending,
        "matched_synced": report.matched_synced,
        "created": report.created,
        "unchanged": report.unchanged,
        "skipped": [dict(skipped) for skipped in report.skipped],
        "decisions": [decision.as_dict() for decision in report.decisions],
        # Only when a style's file waits for its folder (CONTRACT §12): the report is otherwise as it was.
        **(
            {"waiting": [{"style_id": s, "reason": why} for s, why in report.waiting.items()]}
            if report.waiting
            else {}
        ),
    }


def reconcile_report_json(report: ReconcileReport) -> dict[str, Any]:
    return asdict(report)


def rebuild_json(rebuilt: Rebuilt, backups: list[Path]) -> dict[str, Any]:
    """The styles written (CONTRACT §4), and the actors' when there are any (§8)."""
    styles, actors = rebuilt, rebuilt.actors
    answer: dict[str, Any] = {
        "styles": styles.styles_written,
        "failed": styles.failed,
        "errors": {str(style_id): reason for style_id, reason in styles.errors.items()},
        "backups": [str(path) for path in backups],
    }
    if actors.styles_written or actors.failed:
        answer["actors"] = actors.styles_written
        answer["failed_actors"] = actors.failed
        answer["actor_errors"] = {str(actor_id): reason for actor_id, reason in actors.errors.items()}
    return answer
