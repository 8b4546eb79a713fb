"""The rules the use cases apply, as pure functions of values: they return typed Decisions.

Start (the next version's name, when a version may be started again), job reports (how a report
finds its version), imports (which legacy entries are new, and what their decisions say),
annotations (what an edit really changes) and reconcile (when an attempt RunPod cannot tell us
about may be failed). The application layer loads the values, calls these, and hands the
decisions to the aggregates; nothing here reads a store or a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loraledger.domain import blobs, naming
from loraledger.domain.decisions import (
    Candidate,
    Decision,
    ImportOutcome,
    ReconcileOutcome,
    ReportOutcome,
    Rule,
    StartOutcome,
)
from loraledger.domain.entries import Status
from loraledger.domain.errors import JobIdTaken, VersionConflict, VersionNumbersExhausted
from loraledger.domain.legacy import RawEntry, VersionGroup
from loraledger.domain.matching import JobMatch, VersionFacts
from loraledger.domain.naming import LORA_EXTENSION, ModelName, NameRejected, parse_model_name, version_number
from loraledger.domain.observations import JobReport
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.times import parse_time

# --------------------------------------------------------------------------- start


def next_version_name(style_id: int, taken: Iterable[str], kind: SubjectKind = STYLE) -> str:
    """A start without a name takes the one above the style's highest (`V1` for none);
    VersionNumbersExhausted once `V999999999` is taken."""
    names = list(taken)
    name = naming.next_version_name(names)
    if name is None:
        highest = max(names, key=version_number)
        raise VersionNumbersExhausted(
            f"{kind} {style_id} already has {highest}: {highest} is the highest version "
            "number, so there is no next one; give a version_name to retry a failed "
            "version or take a free one"
        )
    return name


def check_startable(
    style_id: int, version_name: str, status: Status | None, kind: SubjectKind = STYLE
) -> None:
    """A pending version is being trained and a completed one keeps its LoRA: VersionConflict."""
    if status in (Status.PENDING, Status.COMPLETED):
        raise VersionConflict(
            f"{kind} {style_id} {version_name} is {status}"
            + ("; a completed LoRA is never overwritten" if status == Status.COMPLETED else "")
        )


def plan_start(
    style_id: int,
    version_name: str,
    current: VersionFacts | None,
    request_id: str,
    kind: SubjectKind = STYLE,
) -> Decision:
    """A new version, or a new attempt at a failed one; VersionConflict for pending or completed."""
    considered: tuple[Candidate, ...] = ()
    if current is None:
        rule = Rule.NEW_VERSION
    else:
        check_startable(style_id, version_name, current.status, kind)
        rule = Rule.RETRY_AFTER_FAILURE
        considered = (Candidate(current.id, version_name, current.status, True, "a new attempt"),)
    return Decision("start", rule, StartOutcome.REQUESTED, {"request_id": request_id}, considered)


def start_recorded(
    style_id: int,
    request_id: str,
    job_id: str,
    version: VersionFacts,
    open_request: str | None,
    kind: SubjectKind = STYLE,
) -> Decision | None:
    """RunPod's job id for a request; None when that start is already recorded (a repeat).
    JobIdTaken when the id is an earlier attempt's: its webhook would land on that attempt."""
    if job_id in version.job_ids:
        if open_request != request_id:  # this start was recorded already
            return None
        raise JobIdTaken(f"job {job_id} is an earlier attempt of {kind} {style_id} {version.name}")
    rule = Rule.NEW_VERSION if not version.job_ids else Rule.RETRY_AFTER_FAILURE
    return Decision("start", rule, StartOutcome.STARTED, {"request_id": request_id, "job_id": job_id})


def start_refused(request_id: str, open_request: str | None, status: Status | None) -> Decision | None:
    """RunPod refused or was unreachable: the attempt fails, unless something else ended it since."""
    if open_request != request_id or status != Status.PENDING:
        return None
    return Decision("start", Rule.START_REFUSED, StartOutcome.FAILED, {"request_id": request_id})


# --------------------------------------------------------------------------- job reports


def model_of(model_name: str | None) -> ModelName | None:
    """The version a report's model name (with or without `.safetensors`) names, if it names one."""
    if not model_name:
        return None
    stem = model_name[: -len(LORA_EXTENSION)] if model_name.endswith(LORA_EXTENSION) else model_name
    try:
        return parse_model_name(stem)
    except NameRejected:
        return None


def match_by_job(report: JobReport, known_job_id: str | None, version: VersionFacts) -> JobMatch:
    """The job index knows the job: exactly, or by its id without the `-e<n>` suffix."""
    if known_job_id == report.job_id:
        return JobMatch(Rule.JOB_ID_EXACT, version, f"job id {report.job_id}")
    return JobMatch(Rule.JOB_ID_SUFFIX, version, f"job id {known_job_id} ~ {report.job_id}")


def match_by_model(report: JobReport, model: ModelName | None, version: VersionFacts | None) -> JobMatch:
    """An unknown job: its model name may name a version (`version` is that version, if it exists)."""
    if model is None:
        return JobMatch(Rule.UNMATCHED, None, f"job {report.job_id} not known, no model name")
    if version is None:
        why = f"job {report.job_id} not known and {model.kind} {model.style_id} has no {model.version_name}"
        return JobMatch(Rule.UNMATCHED, None, why)
    return JobMatch(Rule.MODEL_NAME, version, f"model name {model.canonical}, job {report.job_id} not known")


def parked_match(version: VersionFacts) -> JobMatch:
    """A parked report, applied once its job's start (or import) names the version."""
    return JobMatch(Rule.PARKED_APPLIED, version, "webhook parked until the job was known")


def adopts_job(outcome: ReportOutcome, job_known: bool) -> bool:
    """A report matched by model name that ends the version: its job is known by its id from now on."""
    return outcome in (ReportOutcome.COMPLETE, ReportOutcome.FAIL) and not job_known


# --------------------------------------------------------------------------- import


def raw_id(entry: dict[str, Any]) -> str | None:
    """A legacy entry's id as text: decisions hold only plain values (see domain/blobs.py)."""
    value = entry.get("id")
    return value if isinstance(value, str) or value is None else blobs.dump(value)


def entries_to_record(group: VersionGroup, recorded: frozenset[str]) -> list[tuple[RawEntry, str]]:
    """The group's entries (kept one first) that no earlier import recorded (by fingerprint)."""
    return [
        (raw, rule)
        for raw, rule in [(group.primary, Rule.IMPORTED), *group.merged]
        if raw.fingerprint not in recorded
    ]


def import_created(group: VersionGroup, source: str) -> Decision:
    """A version first known from a legacy document: which entry was kept, and why."""
    notes = (
        (f"name {group.primary.data.get('name')!r} read as {group.version_name}",)
        if group.primary_reading
        else ()
    )

    def why(raw: RawEntry) -> str:
        if raw is not group.primary:
            return "merged into the kept entry"
        return "kept: has the job id and parameters" if group.merged else "the only entry"

    return Decision(
        "import",
        Rule.IMPORTED if not group.merged else group.merged[0][1],
        ImportOutcome.IMPORTED,
        {"source": source, "position": group.primary.position},
        tuple(
            Candidate(
                raw_id(raw.data),
                str(raw.data.get("name")),
                raw.data.get("status"),
                raw is group.primary,
                why(raw),
            )
            for raw in group.entries
        ),
        notes,
    )


def import_merged(kept: VersionFacts, raw: RawEntry, rule: str, source: str) -> Decision:
    """Another legacy entry of a recorded version, folded into it."""
    return Decision(
        "import",
        rule if rule != Rule.IMPORTED else Rule.MERGED_INTO_RECORDED,
        ImportOutcome.MERGED,
        {"source": source, "position": raw.position},
        (
            Candidate(kept.id, kept.name, kept.status, True, "kept entry"),
            Candidate(
                raw_id(raw.data), str(raw.data.get("name")), raw.data.get("status"), False, "merged in"
            ),
        ),
    )


def job_to_index(version: VersionFacts, model_name: str) -> str | None:
    """An imported attempt's job id, which then finds its version (a model name is not a job id)."""
    job_id = version.id
    if job_id is None or job_id == model_name or job_id not in version.job_ids:
        return None
    return job_id


# --------------------------------------------------------------------------- annotations


def annotation_changes(
    entry: dict[str, Any], set_fields: dict[str, Any], cleared: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """What an edit really changes: values that differ, and fields that are there to clear."""
    changes = {
        key: value
        for key, value in set_fields.items()
        if key not in entry or blobs.dump(entry[key]) != blobs.dump(value)
    }
    clear = [name for name in dict.fromkeys(cleared) if name in entry]
    return changes, clear


# --------------------------------------------------------------------------- reconcile

NEVER_CONFIRMED = "the request was never confirmed by RunPod (the service stopped before it answered)"


@dataclass(frozen=True, slots=True)
class StaleFailure:
    """Reconcile's last word on an attempt: the error the entry shows, and the decision."""

    reason: str
    decision: Decision


def attempt_started_at(entry: dict[str, Any], now: datetime) -> datetime:
    """When the version's current attempt was started (its entry's `timestamp`)."""
    started = entry.get("timestamp")
    try:
        return parse_time(started) if isinstance(started, str) else now
    except ValueError:  # an imported entry with an unreadable time counts as just started
        return now


def is_overdue(version: VersionFacts, started_at: datetime, now: datetime, older_than: timedelta) -> bool:
    """Pending for longer than the given age: reconcile asks about it."""
    return version.status == Status.PENDING and started_at <= now - older_than


def job_to_ask(version: VersionFacts, model_name: str) -> str | None:
    """The job RunPod can be asked about; None while the request never got a job id."""
    job_id = version.id
    return None if job_id is None or job_id == model_name else job_id


def stale_failure(
    version: VersionFacts, job_id: str | None, age: timedelta, grace: timedelta
) -> StaleFailure | None:
    """An attempt RunPod never confirmed (`job_id` None) or no longer knows fails after the grace
    period; not before, and not once anything else ended it or started another attempt."""
    if age < grace or version.status != Status.PENDING or (job_id is not None and version.id != job_id):
        return None
    if job_id is None:
        rule, reason = Rule.SUBMISSION_NEVER_CONFIRMED, NEVER_CONFIRMED
    else:
        rule = Rule.NOT_FOUND_AFTER_GRACE
        reason = f"RunPod no longer knows job {job_id} (expired before its end was reported)"
    decision = Decision(
        "reconcile",
        rule,
        ReconcileOutcome.FAIL,
        {"job_id": job_id},
        (Candidate(version.id, version.name, version.status, True, reason),),
    )
    return StaleFailure(reason, decision)
