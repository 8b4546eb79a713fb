"""What each TrainingVersion event does to the version: its entry (the file's object) and its state.

One function per event, called by that event's `apply`. Commands and the projection's fold both
replay events through these, so the file can never disagree with what the commands saw. They
only copy what the event says: every choice was taken before the event was recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loraledger.domain import blobs
from loraledger.domain.entries import SYNCED_FROM_S3, Status

if TYPE_CHECKING:
    from loraledger.domain.training_version import TrainingVersion

    Requested = TrainingVersion.TrainingRequested
    Started = TrainingVersion.TrainingStarted
    Completed = TrainingVersion.TrainingCompleted
    Failed = TrainingVersion.TrainingFailed
    Repeated = TrainingVersion.WebhookRepeated
    FromS3 = TrainingVersion.CreatedFromS3
    Synced = TrainingVersion.LoraSynced
    Removed = TrainingVersion.LoraRemoved
    Imported = TrainingVersion.Imported
    Merged = TrainingVersion.Merged
    from typing import TypeAlias

    Annotated: TypeAlias = TrainingVersion.Annotated | TrainingVersion.EditedInFile

_LEFT_BY_AN_ATTEMPT = ("loraUrl", "completedAt", "error", "failedAt", "lastSynced")


def requested(version: TrainingVersion, event: Requested) -> None:
    entry = version.entry
    for stale in _LEFT_BY_AN_ATTEMPT:
        entry.pop(stale, None)
    entry["id"] = event.model_name
    entry["name"] = version.version_name
    if event.description is not None:
        entry["description"] = event.description
    entry["timestamp"] = event.requested_at
    entry["parameters"] = blobs.load(event.parameters_json)
    entry["status"] = "pending"
    entry.update(blobs.load(event.fields_json))
    version.open_request = event.request_id
    version.last_request = event.request_id
    version.hidden = False  # a new attempt is shown, even of a version deleted from the file


def started(version: TrainingVersion, event: Started) -> None:
    version.entry["id"] = event.job_id
    version.job_ids.append(event.job_id)
    version.open_request = None


def completed(version: TrainingVersion, event: Completed) -> None:
    entry = version.entry
    entry["status"] = "completed"
    if event.lora_url is not None:
        entry["loraUrl"] = event.lora_url
    entry["completedAt"] = event.completed_at
    entry.pop("error", None)
    entry.pop("failedAt", None)
    _adopt_attempt(version, event.job_id)
    version.open_request = None


def failed(version: TrainingVersion, event: Failed) -> None:
    entry = version.entry
    entry["status"] = "failed"
    entry["error"] = event.error
    entry["failedAt"] = event.failed_at
    entry.pop("completedAt", None)
    _adopt_attempt(version, event.job_id)
    version.open_request = None


def repeated(version: TrainingVersion, event: Repeated) -> None:
    if event.lora_url is not None:
        version.entry["loraUrl"] = event.lora_url


def created_from_s3(version: TrainingVersion, event: FromS3) -> None:
    version.entry = {
        "id": version.model_name,
        "name": version.version_name,
        "description": SYNCED_FROM_S3,
        "timestamp": event.last_modified,
        "parameters": {},
        "status": "completed",
        "loraUrl": event.lora_url,
        "lastSynced": event.synced_at,
    }
    version.files[event.key] = event.etag


def synced(version: TrainingVersion, event: Synced) -> None:
    entry = version.entry
    if event.completes:
        entry["status"] = "completed"
        entry.pop("error", None)
        entry.pop("failedAt", None)
        version.open_request = None
    if event.lora_url is not None:
        entry["loraUrl"] = event.lora_url
    entry["lastSynced"] = event.synced_at
    version.files[event.key] = event.etag


def removed(version: TrainingVersion, event: Removed) -> None:
    version.files.pop(event.key, None)
    if event.drops_lora_url:
        version.entry.pop("loraUrl", None)


def imported(version: TrainingVersion, event: Imported) -> None:
    version.entry = blobs.load(event.entry_json)
    version.canonical_order = False
    version.imported_fingerprints.add(event.fingerprint)
    job_id = version.current_id
    if job_id is not None and job_id != version.model_name:
        version.job_ids.append(job_id)
        if version.status in (Status.COMPLETED, Status.FAILED):
            version.reported_jobs.add(job_id)


def merged(version: TrainingVersion, event: Merged) -> None:
    entry = version.entry
    entry.update(blobs.load(event.taken_json))
    if entry.get("status") == "completed":
        entry.pop("error", None)
        entry.pop("failedAt", None)
    version.imported_fingerprints.add(event.fingerprint)


def annotated(version: TrainingVersion, event: Annotated) -> None:
    entry = version.entry
    entry.update(blobs.load(event.set_json))
    for name in event.cleared:
        entry.pop(name, None)


def _adopt_attempt(version: TrainingVersion, job_id: str | None) -> None:
    """A reported end of `job_id`: it becomes the version's attempt if it was not yet."""
    if job_id is None:
        return
    if job_id not in version.job_ids:
        version.job_ids.append(job_id)
        version.entry["id"] = job_id
    version.reported_jobs.add(job_id)
