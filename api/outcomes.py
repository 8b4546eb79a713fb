"""One log line per command outcome (CONTRACT §10): what was decided, about which subject and version,
for which RunPod job, by which rule. In JSON logs each of these is a field of its own."""

from __future__ import annotations

import logging
from typing import Any

from loraledger.application.imports import ImportReport
from loraledger.application.sync import SyncReport
from loraledger.domain.decisions import Decision, SyncOutcome
from loraledger.domain.naming import NameRejected, key_basename, parse_lora_key
from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind

log = logging.getLogger("loraledger.outcomes")


def subject(style_id: int | None, kind: SubjectKind = STYLE) -> str | None:
    """`style/1`, `actor/6`: the subject as the logs write it."""
    return None if style_id is None else f"{kind}/{style_id}"


def log_outcome(
    command: str,
    outcome: str,
    *,
    style_id: int | None,
    version: str | None,
    job_id: str | None = None,
    rule: str | None = None,
    level: int = logging.INFO,
    kind: SubjectKind = STYLE,
    **more: Any,
) -> None:
    fields = {
        "command": command,
        "outcome": outcome,
        "subject": subject(style_id, kind),
        "version": version,
        "job_id": job_id,
        "rule": rule,
        **more,
    }
    said = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
    log.log(level, "%s", said, extra=fields)


def log_decision(
    command: str, decision: Decision, *, style_id: int | None, version: str | None, **more: Any
) -> None:
    job_id = decision.input.get("job_id") if isinstance(decision.input.get("job_id"), str) else None
    log_outcome(
        command,
        str(decision.outcome),
        style_id=style_id,
        version=version,
        job_id=job_id,
        rule=decision.rule,
        **more,
    )


def log_sync_outcomes(report: SyncReport) -> None:
    """A line for each file the sync recorded something for (unchanged ones say nothing)."""
    for decision in report.decisions:
        if decision.outcome == SyncOutcome.UNCHANGED:
            continue
        key = str(decision.input.get("key", ""))
        kind = ACTOR if key_basename(key).startswith("actor_") else STYLE
        try:
            model = parse_lora_key(key, kind)
        except NameRejected:
            log_decision("sync", decision, style_id=None, version=None, key=key)
            continue
        log_decision(
            "sync", decision, style_id=model.style_id, version=model.version_name, key=key, kind=kind
        )


def log_import_outcomes(report: ImportReport) -> None:
    """A DEBUG line for each version an import recorded or merged (the kept entry's name and id):
    an import is a one-shot migration of thousands of entries whose outcome per file the command
    prints; LORALEDGER_LOG_LEVEL=DEBUG logs each version too."""
    for decision in report.decisions:
        kept = next((candidate for candidate in decision.candidates if candidate.taken), None)
        log_outcome(
            "import",
            str(decision.outcome),
            style_id=report.style_id,
            version=kept.name if kept else None,
            job_id=kept.id if kept else None,
            rule=decision.rule,
            level=logging.DEBUG,
            source=report.source,
            kind=report.kind,
        )
