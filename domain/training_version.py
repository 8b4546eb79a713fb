"""The TrainingVersion aggregate: one per (style, version name), whatever told us about it first.

Its id is derived from the style and version name, so a second aggregate for the same version
cannot be saved: the store refuses it, and that is what makes duplicate entries impossible.
Every event that came from a match carries the Decision that chose it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from loraledger.domain import blobs
from loraledger.domain.entries import OWNED_FIELDS, SYNCED_FROM_S3, ordered
from loraledger.domain.naming import format_model_name, parse_style_id, parse_version_name
from loraledger.domain.times import format_time

LEDGER_NAMESPACE = uuid5(NAMESPACE_URL, "https://loraledger/")


def version_id(style_id: int, version_name: str) -> UUID:
    """The one id a (style, version) can have."""
    return uuid5(LEDGER_NAMESPACE, f"training-version/{style_id}/{version_name}")


class TrainingVersion(Aggregate):
    """What is known about one version of one style's LoRA, built only from its events."""

    TOPIC: ClassVar[str] = "loraledger:TrainingVersion"

    class Created(Aggregate.Created):  # the library's default creation event; unused here
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Created"

    class VersionRegistered(Aggregate.Created):
        """A version about to be trained (the first fact is the request that follows)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.VersionRegistered"
        style_id: int
        version_name: str

    def __init__(self, style_id: int, version_name: str) -> None:
        self.style_id = style_id
        self.version_name = version_name
        self.model_name = format_model_name(style_id, version_name)
        self.entry: dict[str, Any] = {}
        self.canonical_order = True
        self.job_ids: list[str] = []
        self.reported_jobs: set[str] = set()
        self.open_request: str | None = None
        self.files: dict[str, str] = {}
        self.imported_fingerprints: set[str] = set()

    @classmethod
    def register(cls, style_id: int, version_name: str) -> TrainingVersion:
        style_id = parse_style_id(style_id)
        version_name = parse_version_name(version_name)
        return cls._create(
            cls.VersionRegistered,
            id=version_id(style_id, version_name),
            style_id=style_id,
            version_name=version_name,
        )

    # ----------------------------------------------------------------- reading

    @property
    def status(self) -> str | None:
        value = self.entry.get("status")
        return value if isinstance(value, str) else None

    @property
    def lora_url(self) -> str | None:
        value = self.entry.get("loraUrl")
        return value if isinstance(value, str) else None

    @property
    def current_id(self) -> str | None:
        value = self.entry.get("id")
        return value if isinstance(value, str) else None

    def adopt_attempt(self, job_id: str | None) -> None:
        """A reported end of `job_id`: it becomes the version's attempt if it was not yet."""
        if job_id is None:
            return
        if job_id not in self.job_ids:
            self.job_ids.append(job_id)
            self.entry["id"] = job_id
        self.reported_jobs.add(job_id)

    def document_entry(self) -> dict[str, Any]:
        """The entry exactly as `training_versions.json` shows it."""
        return ordered(self.entry, canonical=self.canonical_order)

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
            entry = aggregate.entry
            for stale in ("loraUrl", "completedAt", "error", "failedAt", "lastSynced"):
                entry.pop(stale, None)
            entry["id"] = self.model_name
            entry["name"] = aggregate.version_name
            if self.description is not None:
                entry["description"] = self.description
            entry["timestamp"] = self.requested_at
            entry["parameters"] = blobs.load(self.parameters_json)
            entry["status"] = "pending"
            entry.update(blobs.load(self.fields_json))
            aggregate.open_request = self.request_id

    def request_training(
        self,
        *,
        request_id: str,
        requested_at: datetime,
        parameters: dict[str, Any],
        description: str | None,
        fields: dict[str, Any],
        decision: dict[str, Any],
    ) -> None:
        self.trigger_event(
            self.TrainingRequested,
            request_id=request_id,
            model_name=self.model_name,
            requested_at=format_time(requested_at),
            parameters_json=blobs.dump(parameters),
            description=description,
            fields_json=blobs.dump(fields),
            decision=decision,
        )

    class TrainingStarted(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingStarted"
        request_id: str
        job_id: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            aggregate.entry["id"] = self.job_id
            aggregate.job_ids.append(self.job_id)
            aggregate.open_request = None

    def record_start(self, *, request_id: str, job_id: str, decision: dict[str, Any]) -> None:
        self.trigger_event(self.TrainingStarted, request_id=request_id, job_id=job_id, decision=decision)

    class TrainingCompleted(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingCompleted"
        job_id: str | None
        completed_at: str
        lora_url: str | None
        report_json: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            entry = aggregate.entry
            entry["status"] = "completed"
            if self.lora_url is not None:
                entry["loraUrl"] = self.lora_url
            entry["completedAt"] = self.completed_at
            entry.pop("error", None)
            entry.pop("failedAt", None)
            aggregate.adopt_attempt(self.job_id)
            aggregate.open_request = None

    def complete(
        self,
        *,
        job_id: str | None,
        completed_at: datetime,
        lora_url: str | None,
        report: dict[str, Any],
        decision: dict[str, Any],
    ) -> None:
        self.trigger_event(
            self.TrainingCompleted,
            job_id=job_id,
            completed_at=format_time(completed_at),
            lora_url=lora_url,
            report_json=blobs.dump(report),
            decision=decision,
        )

    class TrainingFailed(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.TrainingFailed"
        job_id: str | None
        failed_at: str
        error: str
        report_json: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            entry = aggregate.entry
            entry["status"] = "failed"
            entry["error"] = self.error
            entry["failedAt"] = self.failed_at
            entry.pop("completedAt", None)
            aggregate.adopt_attempt(self.job_id)
            aggregate.open_request = None

    def fail(
        self,
        *,
        job_id: str | None,
        failed_at: datetime,
        error: str,
        report: dict[str, Any],
        decision: dict[str, Any],
    ) -> None:
        self.trigger_event(
            self.TrainingFailed,
            job_id=job_id,
            failed_at=format_time(failed_at),
            error=error,
            report_json=blobs.dump(report),
            decision=decision,
        )

    class WebhookRepeated(Aggregate.Event):
        """A report of a job end already recorded: kept for the audit, changes nothing."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.WebhookRepeated"
        job_id: str
        status: str
        lora_url: str | None
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            if self.lora_url is not None:
                aggregate.entry["loraUrl"] = self.lora_url

    def record_repeat(
        self, *, job_id: str, status: str, lora_url: str | None, decision: dict[str, Any]
    ) -> None:
        self.trigger_event(
            self.WebhookRepeated,
            job_id=job_id,
            status=status,
            lora_url=lora_url,
            decision=decision,
        )

    class WebhookIgnored(Aggregate.Event):
        """A report that must not change the version (an older attempt, a failure after success)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.WebhookIgnored"
        job_id: str
        status: str
        decision: dict[str, Any]

    def record_ignored(self, *, job_id: str, status: str, decision: dict[str, Any]) -> None:
        self.trigger_event(self.WebhookIgnored, job_id=job_id, status=status, decision=decision)

    # ----------------------------------------------------------------- S3

    class CreatedFromS3(Aggregate.Created):
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

        def apply(self, aggregate: TrainingVersion) -> None:
            aggregate.entry = {
                "id": aggregate.model_name,
                "name": aggregate.version_name,
                "description": SYNCED_FROM_S3,
                "timestamp": self.last_modified,
                "parameters": {},
                "status": "completed",
                "loraUrl": self.lora_url,
                "lastSynced": self.synced_at,
            }
            aggregate.files[self.key] = self.etag

    @classmethod
    def from_s3(
        cls,
        style_id: int,
        version_name: str,
        *,
        key: str,
        etag: str,
        size: int,
        last_modified: datetime,
        lora_url: str,
        synced_at: datetime,
        decision: dict[str, Any],
    ) -> TrainingVersion:
        return cls._create(
            cls.CreatedFromS3,
            id=version_id(style_id, version_name),
            style_id=style_id,
            version_name=version_name,
            key=key,
            etag=etag,
            size=size,
            last_modified=format_time(last_modified),
            lora_url=lora_url,
            synced_at=format_time(synced_at),
            decision=decision,
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
            entry = aggregate.entry
            if self.completes:
                entry["status"] = "completed"
                entry.pop("error", None)
                entry.pop("failedAt", None)
                aggregate.open_request = None
            if self.lora_url is not None:
                entry["loraUrl"] = self.lora_url
            entry["lastSynced"] = self.synced_at
            aggregate.files[self.key] = self.etag

    def sync_lora(
        self,
        *,
        key: str,
        etag: str,
        size: int,
        last_modified: datetime,
        lora_url: str | None,
        completes: bool,
        synced_at: datetime,
        decision: dict[str, Any],
    ) -> None:
        self.trigger_event(
            self.LoraSynced,
            key=key,
            etag=etag,
            size=size,
            last_modified=format_time(last_modified),
            lora_url=lora_url,
            completes=completes,
            synced_at=format_time(synced_at),
            decision=decision,
        )

    # ----------------------------------------------------------------- import

    class Imported(Aggregate.Created):
        """A version first known from a legacy `training_versions.json` entry (kept whole)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Imported"
        style_id: int
        version_name: str
        source: str
        entry_json: str
        fingerprint: str
        decision: dict[str, Any]

        def apply(self, aggregate: TrainingVersion) -> None:
            aggregate.entry = blobs.load(self.entry_json)
            aggregate.canonical_order = False
            aggregate.imported_fingerprints.add(self.fingerprint)
            job_id = aggregate.current_id
            if job_id is not None and job_id != aggregate.model_name:
                aggregate.job_ids.append(job_id)
                if aggregate.status in ("completed", "failed"):
                    aggregate.reported_jobs.add(job_id)

    @classmethod
    def from_import(
        cls,
        style_id: int,
        version_name: str,
        *,
        source: str,
        entry: dict[str, Any],
        fingerprint: str,
        decision: dict[str, Any],
    ) -> TrainingVersion:
        return cls._create(
            cls.Imported,
            id=version_id(style_id, version_name),
            style_id=style_id,
            version_name=version_name,
            source=source,
            entry_json=blobs.dump(entry),
            fingerprint=fingerprint,
            decision=decision,
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
            aggregate.entry.update(blobs.load(self.taken_json))
            if aggregate.entry.get("status") == "completed":
                aggregate.entry.pop("error", None)
                aggregate.entry.pop("failedAt", None)
            aggregate.imported_fingerprints.add(self.fingerprint)

    def merge_entry(
        self,
        *,
        source: str,
        raw_entry: dict[str, Any],
        taken: dict[str, Any],
        fingerprint: str,
        decision: dict[str, Any],
    ) -> None:
        self.trigger_event(
            self.Merged,
            source=source,
            raw_entry_json=blobs.dump(raw_entry),
            taken_json=blobs.dump(taken),
            fingerprint=fingerprint,
            decision=decision,
        )

    # ----------------------------------------------------------------- annotations

    class Annotated(Aggregate.Event):
        """Fields the service does not own, set (`set_json`) or removed (`cleared`)."""

        TOPIC: ClassVar[str] = "loraledger:TrainingVersion.Annotated"
        set_json: str
        cleared: list[str]

        def apply(self, aggregate: TrainingVersion) -> None:
            aggregate.entry.update(blobs.load(self.set_json))
            for name in self.cleared:
                aggregate.entry.pop(name, None)

    def annotate(self, *, set_fields: dict[str, Any], cleared: list[str]) -> None:
        owned = sorted(OWNED_FIELDS.intersection(set_fields).union(OWNED_FIELDS & set(cleared)))
        if owned:
            raise ValueError(f"fields owned by the service cannot be set: {', '.join(owned)}")
        self.trigger_event(self.Annotated, set_json=blobs.dump(set_fields), cleared=cleared)


HISTORY_BLOB_FIELDS = {
    "parameters_json": "parameters",
    "fields_json": "fields",
    "report_json": "report",
    "entry_json": "entry",
    "raw_entry_json": "raw_entry",
    "taken_json": "taken",
    "set_json": "set",
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
