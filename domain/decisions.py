"""The Decision value: what a match looked at, which rule fired, and why each candidate was or was not taken.

Decisions are stored inside the events they caused (as plain dicts, `as_dict()`, written once at
the event), so a duplicate or a surprising state can be explained later by replaying history
rather than by reading logs. Outcomes are enums whose values are the strings stored since the
first version: comparisons with text and the stored bytes stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Source = Literal[
    "webhook", "s3-sync", "s3-event", "import", "reconcile", "start", "file-edit", "patch", "cancel"
]


class StartOutcome(StrEnum):
    REQUESTED = "requested"
    STARTED = "started"
    FAILED = "failed"


class ReportOutcome(StrEnum):
    """What a report of a job's end does to the version it was matched to."""

    COMPLETE = "complete"
    FAIL = "fail"
    REPEAT = "repeat"
    IGNORE = "ignore"
    PARK = "park"
    RUNNING = "running"


class SyncOutcome(StrEnum):
    """What one listed LoRA file does."""

    COMPLETE = "complete"
    SYNCED = "synced"
    CREATE = "create"
    UNCHANGED = "unchanged"
    SKIP = "skip"
    REMOVED = "removed"


class ImportOutcome(StrEnum):
    IMPORTED = "imported"
    MERGED = "merged"


class ReconcileOutcome(StrEnum):
    FAIL = "fail"


class FileEditOutcome(StrEnum):
    """What an edit someone else made to a file did to one version."""

    ANNOTATED = "annotated"
    REFUSED = "refused"
    HIDDEN = "hidden"
    SHOWN = "shown"
    STARTED = "started"
    ADDED = "added"
    FAILED = "failed"


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"


Outcome = (
    StartOutcome
    | ReportOutcome
    | SyncOutcome
    | ImportOutcome
    | ReconcileOutcome
    | FileEditOutcome
    | CancelOutcome
)


class ReportAnswer(StrEnum):
    """What the sender of a job report is told (the webhook answer's `result`)."""

    APPLIED = "applied"
    REPEAT = "repeat"
    IGNORED = "ignored"
    UNMATCHED = "unmatched"
    RUNNING = "running"


_ANSWERS = {
    ReportOutcome.COMPLETE: ReportAnswer.APPLIED,
    ReportOutcome.FAIL: ReportAnswer.APPLIED,
    ReportOutcome.REPEAT: ReportAnswer.REPEAT,
    ReportOutcome.IGNORE: ReportAnswer.IGNORED,
    ReportOutcome.PARK: ReportAnswer.UNMATCHED,
    ReportOutcome.RUNNING: ReportAnswer.RUNNING,
}


def answer_for(outcome: ReportOutcome) -> ReportAnswer:
    """The one place the two vocabularies meet: a report's outcome -> what its sender is told."""
    return _ANSWERS[outcome]


class Rule:
    """Every rule a decision can name. Tests assert decisions only ever use these."""

    # S3 sync (CONTRACT §5)
    PENDING_BY_NAME = "first-pass:pending-or-failed-or-no-url-by-name"
    SYNCED_BY_URL = "second-pass:lora-url-contains-file-name"
    SYNCED_BY_MODEL_ID = "second-pass:id-is-model-name"
    UNCHANGED_ETAG = "unchanged:same-etag"
    CREATED = "no-match:created"
    OTHER_FILE_OF_VERSION = "no-match:version-supplied-by-another-file"
    EMPTY_FILE = "skipped:empty-file"
    NOT_A_LORA_NAME = "skipped:key-is-not-a-lora-name"
    # S3 event notifications (a created file goes through the sync rules above)
    FILE_REMOVED = "s3-event:file-removed"
    # Webhook and reconcile
    JOB_ID_EXACT = "job-id:exact"
    JOB_ID_SUFFIX = "job-id:suffix-removed"
    MODEL_NAME = "model-name"
    UNMATCHED = "no-match:parked"
    REPEAT = "repeat:already-reported"
    STALE_ATTEMPT = "ignored:older-attempt"
    OTHER_ATTEMPT_AFTER_COMPLETION = "ignored:other-attempt-after-reported-completion"
    FAILURE_AFTER_COMPLETION = "ignored:failure-after-completion"
    PARKED_APPLIED = "parked-webhook:applied-on-start"
    NOT_FOUND_AFTER_GRACE = "reconcile:unknown-to-runpod-after-grace"
    SUBMISSION_NEVER_CONFIRMED = "reconcile:submission-never-confirmed"
    STILL_RUNNING = "reconcile:still-running"
    # Import
    IMPORTED = "import:single-entry"
    MERGED_SAME_NAME = "import:merge:same-name"
    MERGED_FILE_NAME = "import:merge:name-is-file-or-model-name"
    MERGED_MODEL_ID = "import:merge:id-is-model-name"
    MERGED_SAME_JOB = "import:merge:same-job-id"
    MERGED_INTO_RECORDED = "import:merge:version-already-recorded"
    # Start
    NEW_VERSION = "start:new-version"
    RETRY_AFTER_FAILURE = "start:retry-after-failure"
    START_REFUSED = "start:runpod-refused-or-unreachable"
    # Edits someone else made to a file (CONTRACT §12), and showing a hidden version again
    FILE_ANNOTATED = "file-edit:fields-the-service-does-not-own-taken"
    FILE_OWNED_REFUSED = "file-edit:owned-field-refused"
    FILE_MARKED_FAILED = "file-edit:pending-entry-marked-failed-kept"
    FILE_DELETED = "file-edit:entry-deleted-hidden"
    FILE_ENTRY_BACK = "file-edit:hidden-entry-back-shown"
    FILE_STARTED = "file-edit:pending-entry-with-job-id-started"
    FILE_ADDED = "file-edit:new-entry-recorded"
    SHOWN_AGAIN = "patch:hidden-false-shown"
    # Cancel
    CANCELLED = "cancel:pending-attempt-cancelled"
    HIDDEN_BY_PATCH = "patch:hidden-true-hidden"

    @classmethod
    def all(cls) -> frozenset[str]:
        return frozenset(
            value for name, value in vars(cls).items() if name.isupper() and isinstance(value, str)
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """One version a match considered."""

    id: str | None
    name: str
    status: str | None
    taken: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "taken": self.taken,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one match: source, input, rule, outcome, and the candidates weighed."""

    source: Source
    rule: str
    outcome: Outcome
    input: dict[str, Any] = field(default_factory=dict)
    candidates: tuple[Candidate, ...] = ()
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rule": self.rule,
            "outcome": self.outcome.value,
            "input": dict(self.input),
            "candidates": [candidate.as_dict() for candidate in self.candidates],
            "notes": list(self.notes),
        }
