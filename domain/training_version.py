"""The TrainingVersion aggregate: one per (subject, version name), whatever told us about it first.

A subject is a style or an actor (domain/subjects.py); `style_id` holds the subject's id and
`kind` its kind (events recorded before actors existed have no `kind`: they read as styles).
Its id is derived from the subject and version name, so a second aggregate for the same version
cannot be saved: the store refuses it, and that is what makes duplicate entries impossible.
Every transition takes the typed Decision that chose it and writes it, once, into its event;
each refuses (with a domain error, recording nothing) what the version's state does not allow.
The rules never ask for a refused transition: the guards use the same predicates as the rules.
What each event does to the entry is in domain/version_entry.py.

Over 350 lines because the fifteen events stay nested in the class, each beside its guarded
transition: the library registers their stored topics from the class body, and the projection
recognises them by qualified name, so they cannot move to a module of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from loraledger.domain import blobs, version_entry
from loraledger.domain.decisions import Decision, ReportOutcome, SyncOutcome
from loraledger.domain.entries import STATUS_OF_TEXT, Status, check_settable, ordered
from loraledger.domain.errors import TransitionRefused
from loraledger.domain.matching import (
    ReportDecision,
    SyncDecision,
    VersionFacts,
    keeps_its_lora,
    lora_files_named_in,
)
from loraledger.domain.naming import format_model_name, key_basename, parse_subject_id, parse_version_name
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.domain.policies import check_startable
from loraledger.domain.subjects import STYLE, StyleKindNotStored, Subject, SubjectKind
from loraledger.domain.times import format_time

LEDGER_NAMESPACE = uuid5(NAMESPACE_URL, "https://loraledger/")


def version_id(style_id: int, version_name: str, kind: SubjectKind = STYLE) -> UUID:
    """The one id a (subject, version) can have (a style's as before actors existed)."""
    if kind == STYLE:
        return uuid5(LEDGER_NAMESPACE, f"training-version/{style_id}/{version_name}")
    return uuid5(LEDGER_NAMESPACE, f"training-version/{kind}/{style_id}/{version_name}")


class TrainingVersion(Aggregate):
    """What is known about one version of one style's LoRA, built only from its events."""

    TOPIC: ClassVar[str] = "loraledger:TrainingVersion"

    class Created(Aggregate.Created):  # the library's default creation event; unused here
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Created"

    class VersionRegistered(StyleKindNotStored, Aggregate.Created):
        """A version about to be trained (the first fact is the request that follows)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.VersionRegistered"
        style_id: int
        version_name: str
        kind: str = STYLE  # absent from events recorded before actors existed

    def __init__(self, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> None:
        self.style_id = style_id
        self.kind: SubjectKind = kind
        self.version_name = version_name
        self.model_name = format_model_name(style_id, version_name, kind)
        self.entry: dict[str, Any] = {}  # the file's object: user fields and key order included
        self.canonical_order = True
        self.job_ids: list[str] = []  # every attempt's RunPod job id, oldest first
        self.reported_jobs: set[str] = set()  # attempts whose end was recorded
        self.open_request: str | None = None  # a start recorded but not yet answered by RunPod
        self.last_request: str | None = None  # the latest start's request id (None: never started)
        self.files: dict[str, str] = {}  # S3 key -> ETag of the LoRA files seen for it
        self.imported_fingerprints: set[str] = set()  # legacy entries already recorded
        self.hidden = False  # deleted from the file by someone else: not shown until shown again

    @classmethod
    def register(cls, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> TrainingVersion:
        style_id = parse_subject_id(style_id, kind)
        version_name = parse_version_name(version_name)
        return cls._create(
            cls.VersionRegistered,
            id=version_id(style_id, version_name, kind),
            style_id=style_id,
            version_name=version_name,
            kind=kind,
        )

    # ----------------------------------------------------------------- reading

    @property
    def subject(self) -> Subject:
        return Subject(self.kind, self.style_id)

    @property
    def status(self) -> Status | None:
        value = self.entry.get("status")
        return STATUS_OF_TEXT.get(value) if isinstance(value, str) else None

    @property
    def lora_url(self) -> str | None:
        value = self.entry.get("loraUrl")
        return value if isinstance(value, str) else None

    @property
    def current_id(self) -> str | None:
        value = self.entry.get("id")
        return value if isinstance(value, str) else None

    def facts(self) -> VersionFacts:
        """What the rules need to know of this version."""
        return VersionFacts(
            name=self.version_name,
            id=self.current_id,
            status=self.status,
            lora_url=self.lora_url,
            job_ids=tuple(self.job_ids),
            reported_jobs=frozenset(self.reported_jobs),
        )

    def document_entry(self) -> dict[str, Any]:
        """The entry exactly as `training_versions.json` shows it."""
        return ordered(self.entry, canonical=self.canonical_order)

    def _refuse(self, what: str) -> TransitionRefused:
        return TransitionRefused(f"{self.subject} {self.version_name} ({self.status}): {what}")

    # ----------------------------------------------------------------- training

    class TrainingRequested(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingRequested"
        request_id: str
        model_name: str
        requested_at: str
        parameters_json: str
        description: str | None
        fields_json: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.requested(aggregate, self)

    def request_training(
        self,
        *,
        request_id: str,
        requested_at: datetime,
        parameters: dict[str, Any],
        description: str | None,
        fields: dict[str, Any],
        decision: Decision,
    ) -> None:
        check_startable(self.style_id, self.version_name, self.status, self.kind)
        check_settable(fields, "set")
        self.trigger_event(
            self.TrainingRequested,
            request_id=request_id,
            model_name=self.model_name,
            requested_at=format_time(requested_at),
            parameters_json=blobs.dump(parameters),
            description=description,
            fields_json=blobs.dump(fields),
            decision=decision.as_dict(),
        )

    class TrainingStarted(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingStarted"
        request_id: str
        job_id: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.started(aggregate, self)

    def record_start(self, *, request_id: str, job_id: str, decision: Decision) -> None:
        if self.last_request is None:
            raise self._refuse(f"no start was requested, so job {job_id} cannot be its attempt")
        if job_id in self.job_ids:
            raise self._refuse(f"job {job_id} is already an attempt of this version")
        self.trigger_event(
            self.TrainingStarted, request_id=request_id, job_id=job_id, decision=decision.as_dict()
        )

    class TrainingCompleted(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingCompleted"
        job_id: str | None
        completed_at: str
        lora_url: str | None
        report_json: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.completed(aggregate, self)

    class TrainingFailed(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingFailed"
        job_id: str | None
        failed_at: str
        error: str
        report_json: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.failed(aggregate, self)

    class WebhookRepeated(Aggregate.Event):
        """A report of a job end already recorded: kept for the audit, changes nothing."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.WebhookRepeated"
        job_id: str
        status: str
        lora_url: str | None
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.repeated(aggregate, self)

    class WebhookIgnored(Aggregate.Event):
        """A report that must not change the version (an older attempt, a failure after success)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.WebhookIgnored"
        job_id: str
        status: str
        decision: dict[str, Any]

    def record_report(self, decided: ReportDecision, report: JobReport, at: datetime) -> None:
        """A report of a job's end, as `decide_report` decided it (one completion per job; a
        completed LoRA is never overwritten by a failure)."""
        outcome, attempt = decided.outcome, decided.attempt_id
        reported = attempt in self.reported_jobs
        decision = decided.decision.as_dict()
        if outcome == ReportOutcome.COMPLETE and not reported:
            self.trigger_event(
                self.TrainingCompleted,
                job_id=attempt,
                completed_at=format_time(at),
                lora_url=decided.lora_url,
                report_json=blobs.dump(report.summary),
                decision=decision,
            )
        elif (
            outcome == ReportOutcome.FAIL and not reported and not keeps_its_lora(self.status, self.lora_url)
        ):
            self.trigger_event(
                self.TrainingFailed,
                job_id=attempt,
                failed_at=format_time(at),
                error=decided.error or "training failed",
                report_json=blobs.dump(report.summary),
                decision=decision,
            )
        elif outcome == ReportOutcome.REPEAT and reported:
            self.trigger_event(
                self.WebhookRepeated,
                job_id=report.job_id,
                status=report.status,
                lora_url=decided.lora_url,
                decision=decision,
            )
        elif outcome == ReportOutcome.IGNORE:
            self.trigger_event(
                self.WebhookIgnored, job_id=report.job_id, status=report.status, decision=decision
            )
        else:
            raise self._refuse(f"a report of job {report.job_id} cannot {outcome} it")

    def fail_unreported(self, *, job_id: str | None, reason: str, at: datetime, decision: Decision) -> None:
        """A failure the service concluded itself (RunPod refused, or forgot the job)."""
        if self.status != Status.PENDING:
            raise self._refuse("only a pending attempt can fail without a report")
        self.trigger_event(
            self.TrainingFailed,
            job_id=job_id,
            failed_at=format_time(at),
            error=reason,
            report_json=blobs.dump({}),
            decision=decision.as_dict(),
        )

    # ----------------------------------------------------------------- S3

    class CreatedFromS3(StyleKindNotStored, Aggregate.Created):
        """A version first seen as a LoRA file in S3 (no training of it was recorded)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.CreatedFromS3"
        style_id: int
        version_name: str
        key: str
        etag: str
        size: int
        last_modified: str
        lora_url: str
        synced_at: str
        decision: dict[str, Any]
        kind: str = STYLE  # absent from events recorded before actors existed

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.created_from_s3(aggregate, self)

    @classmethod
    def from_file(
        cls, style_id: int, decided: SyncDecision, lora: LoraObject, at: datetime, kind: SubjectKind = STYLE
    ) -> TrainingVersion:
        """A LoRA file no version claims becomes a completed version of its own."""
        if decided.outcome != SyncOutcome.CREATE or decided.version_name is None or decided.lora_url is None:
            raise TransitionRefused(f"{lora.key}: a file decided {decided.outcome} creates no version")
        return cls._create(
            cls.CreatedFromS3,
            id=version_id(style_id, decided.version_name, kind),
            style_id=style_id,
            version_name=decided.version_name,
            key=lora.key,
            etag=lora.etag,
            size=lora.size,
            last_modified=format_time(lora.last_modified),
            lora_url=decided.lora_url,
            synced_at=format_time(at),
            decision=decided.decision.as_dict(),
            kind=kind,
        )

    class LoraSynced(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.LoraSynced"
        key: str
        etag: str
        size: int
        last_modified: str
        lora_url: str | None
        completes: bool
        synced_at: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.synced(aggregate, self)

    def record_file(self, decided: SyncDecision, lora: LoraObject, at: datetime) -> None:
        """A LoRA file the sync matched to this version: it completes it, or is seen again."""
        if decided.outcome not in (SyncOutcome.COMPLETE, SyncOutcome.SYNCED):
            raise self._refuse(f"{lora.key}: a file decided {decided.outcome} is not this version's")
        self.trigger_event(
            self.LoraSynced,
            key=lora.key,
            etag=lora.etag,
            size=lora.size,
            last_modified=format_time(lora.last_modified),
            lora_url=decided.lora_url,
            completes=decided.outcome == SyncOutcome.COMPLETE,
            synced_at=format_time(at),
            decision=decided.decision.as_dict(),
        )

    class LoraSkipped(Aggregate.Event):
        """Another LoRA file named for this version, passed over (it has its LoRA): changes nothing."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.LoraSkipped"
        key: str
        etag: str
        size: int
        last_modified: str
        reason: str
        skipped_at: str
        decision: dict[str, Any]

    def record_skipped_file(self, decided: SyncDecision, lora: LoraObject, at: datetime) -> None:
        """A file named for this version that the sync passed over, with why (once per ETag:
        the caller records each skip once)."""
        if decided.outcome != SyncOutcome.SKIP or decided.version_name != self.version_name:
            raise self._refuse(f"{lora.key}: a file decided {decided.outcome} is not a skip of this version")
        self.trigger_event(
            self.LoraSkipped,
            key=lora.key,
            etag=lora.etag,
            size=lora.size,
            last_modified=format_time(lora.last_modified),
            reason=decided.reason or "passed over",
            skipped_at=format_time(at),
            decision=decided.decision.as_dict(),
        )

    class LoraRemoved(Aggregate.Event):
        """A LoRA file of this version was removed from S3 (an event notification said so)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.LoraRemoved"
        key: str
        removed_at: str
        drops_lora_url: bool
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.removed(aggregate, self)

    def remove_file(self, key: str, *, offered_url: str | None, at: datetime, decision: Decision) -> None:
        """The file at `key` is gone: forgotten, and no longer offered as the loraUrl when the
        loraUrl names it (the URL the file had, or one naming its file name)."""
        if key not in self.files:
            raise self._refuse(f"{key} is not one of its files")
        current = self.lora_url
        drops = current is not None and (
            current == offered_url or key_basename(key) in lora_files_named_in(current)
        )
        self.trigger_event(
            self.LoraRemoved,
            key=key,
            removed_at=format_time(at),
            drops_lora_url=drops,
            decision=decision.as_dict(),
        )

    # ----------------------------------------------------------------- import

    class Imported(StyleKindNotStored, Aggregate.Created):
        """A version first known from a legacy `training_versions.json` entry (kept whole)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Imported"
        style_id: int
        version_name: str
        source: str
        entry_json: str
        fingerprint: str
        decision: dict[str, Any]
        kind: str = STYLE  # absent from events recorded before actors existed

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.imported(aggregate, self)

    @classmethod
    def from_import(
        cls,
        style_id: int,
        version_name: str,
        *,
        source: str,
        entry: dict[str, Any],
        fingerprint: str,
        decision: Decision,
        kind: SubjectKind = STYLE,
    ) -> TrainingVersion:
        return cls._create(
            cls.Imported,
            id=version_id(style_id, version_name, kind),
            style_id=style_id,
            version_name=version_name,
            source=source,
            entry_json=blobs.dump(entry),
            fingerprint=fingerprint,
            decision=decision.as_dict(),
            kind=kind,
        )

    class Merged(Aggregate.Event):
        """Another legacy entry of the same version folded in: the raw entry is kept whole here."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Merged"
        source: str
        raw_entry_json: str
        taken_json: str
        fingerprint: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.merged(aggregate, self)

    def merge_entry(
        self,
        *,
        source: str,
        raw_entry: dict[str, Any],
        taken: dict[str, Any],
        fingerprint: str,
        decision: Decision,
    ) -> None:
        self.trigger_event(
            self.Merged,
            source=source,
            raw_entry_json=blobs.dump(raw_entry),
            taken_json=blobs.dump(taken),
            fingerprint=fingerprint,
            decision=decision.as_dict(),
        )

    # ----------------------------------------------------------------- annotations

    class Annotated(Aggregate.Event):
        """Fields the service does not own, set (`set_json`) or removed (`cleared`)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Annotated"
        set_json: str
        cleared: list[str]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.annotated(aggregate, self)

    def annotate(self, *, set_fields: dict[str, Any], cleared: list[str]) -> None:
        check_settable([*set_fields, *cleared], "changed")
        self.trigger_event(self.Annotated, set_json=blobs.dump(set_fields), cleared=cleared)

    # ----------------------------------------------------------------- edits made to the file

    class VisibilityChanged(Aggregate.Event):
        """Hidden from the file (its entry was deleted there), or shown again."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.VisibilityChanged"
        hidden: bool
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            aggregate.hidden = self.hidden

    def set_hidden(self, hidden: bool, decision: Decision) -> None:
        if hidden == self.hidden:
            raise self._refuse("is already " + ("hidden" if hidden else "shown"))
        self.trigger_event(self.VisibilityChanged, hidden=hidden, decision=decision.as_dict())

    class EditedInFile(Aggregate.Event):
        """An edit someone else made to the file: the fields taken (`set_json`, `cleared`), the
        owned fields refused with why (`refused_json`), and where the edited file was kept."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.EditedInFile"
        source: str
        set_json: str
        cleared: list[str]
        refused_json: str
        backup: str | None
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            version_entry.annotated(aggregate, self)
            aggregate.hidden = False

    def take_file_edit(
        self,
        *,
        source: str,
        set_fields: dict[str, Any],
        cleared: list[str],
        refused: dict[str, Any],
        backup: str | None,
        decision: Decision,
    ) -> None:
        check_settable([*set_fields, *cleared], "changed")
        self.trigger_event(
            self.EditedInFile,
            source=source,
            set_json=blobs.dump(set_fields),
            cleared=cleared,
            refused_json=blobs.dump(refused),
            backup=backup,
            decision=decision.as_dict(),
        )


HISTORY_BLOB_FIELDS = {
    "parameters_json": "parameters",
    "fields_json": "fields",
    "report_json": "report",
    "entry_json": "entry",
    "raw_entry_json": "raw_entry",
    "taken_json": "taken",
    "set_json": "set",
    "refused_json": "refused",
}


def too_deep_warning(event: object) -> str | None:
    """What to tell about an event whose stored values nest deeper than blobs.STORED_MAX_DEPTH
    (only code from before the user-JSON check recorded such values); None for every other event."""
    fields = [
        label
        for name, label in HISTORY_BLOB_FIELDS.items()
        if isinstance(text := getattr(event, name, None), str) and blobs.too_deep(text)
    ]
    if not fields:
        return None
    return (
        f"{', '.join(fields)} nested deeper than {blobs.STORED_MAX_DEPTH} levels (recorded before such "
        "values were refused): the deeper levels are shown as their JSON text"
    )
