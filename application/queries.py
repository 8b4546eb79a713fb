"""Reads of the current state: versions, their names, their history (the files come from projections)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from loraledger.application.store import LedgerStore
from loraledger.domain.indexes import JobIndex
from loraledger.domain.training_version import TrainingVersion

PARKED_TOPIC = "loraledger:JobIndex.WebhookParked"
PARKED_READ_BATCH = 1_000


class Queries:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def find_version(self, style_id: int, version_name: str) -> TrainingVersion | None:
        return self.store.find_version(style_id, version_name)

    def version_names(self, style_id: int) -> list[str]:
        """The style's versions, newest first; empty for a style with no history."""
        return self.store.version_names(style_id)

    def style_versions(self, style_id: int) -> list[TrainingVersion]:
        return self.store.style_versions(style_id)

    def history(self, style_id: int, version_name: str) -> list[CanMutateAggregate[UUID]]:
        """Every event of the version, oldest first. UnknownVersion if it has none."""
        return self.store.history(style_id, version_name)

    def entry(self, style_id: int, version_name: str) -> dict[str, Any]:
        """The version's entry as the file shows it. UnknownVersion if it has none."""
        return self.store.require_version(style_id, version_name).document_entry()

    def unmatched(self) -> list[dict[str, Any]]:
        """Webhooks parked for jobs no version claims yet (CONTRACT §9), one item per job, most
        recently received first: `job_id`, `status`, `model_name`, `received_at`, `deliveries`."""
        jobs: dict[UUID, None] = {}
        position = 0
        while batch := self.store.recorder.select_notifications(
            position + 1, PARKED_READ_BATCH, topics=[PARKED_TOPIC]
        ):
            jobs.update(dict.fromkeys(UUID(str(notification.originator_id)) for notification in batch))
            position = batch[-1].id
        listed = []
        for job_id in jobs:
            job = self.store.find(job_id)
            if not isinstance(job, JobIndex) or not (waiting := job.waiting_reports):
                continue
            last = waiting[-1]
            listed.append(
                {
                    "job_id": last.job_id,
                    "status": last.status,
                    "model_name": last.model_name,
                    "received_at": job.parked_times[-1],
                    "deliveries": len(waiting),
                }
            )
        return sorted(listed, key=lambda item: item["received_at"], reverse=True)
