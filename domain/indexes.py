"""Two small aggregates that let commands find versions without scanning the log.

- `StyleIndex`: the version names of a style and the S3 files (with ETags) already recorded for it,
  so a re-sync with nothing new reads one aggregate per style and records nothing.
- `JobIndex`: which version a RunPod job belongs to (keyed by the job id without its `-e<n>`
  suffix), and webhooks that arrived before the job was known (parked until it is).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from loraledger.domain import blobs
from loraledger.domain.decisions import Decision
from loraledger.domain.errors import JobIdTaken
from loraledger.domain.naming import job_base_id
from loraledger.domain.observations import JobReport
from loraledger.domain.training_version import LEDGER_NAMESPACE


def style_index_id(style_id: int) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"style-index/{style_id}")


def job_index_id(job_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"job-index/{job_base_id(job_id)}")


class StyleIndex(Aggregate):
    TOPIC: ClassVar[str] = "loraledger:StyleIndex"

    class Created(Aggregate.Created):  # the library's default creation event; unused here
        TOPIC: ClassVar[str] = "loraledger:StyleIndex.Created"

    class Opened(Aggregate.Created):
        TOPIC: ClassVar[str] = "loraledger:StyleIndex.Opened"
        style_id: int

    def __init__(self, style_id: int) -> None:
        self.style_id = style_id
        self.version_names: list[str] = []
        self.file_etags: dict[str, str] = {}
        self.sequencers: dict[str, str] = {}  # S3 key -> the latest event notification's sequencer

    @classmethod
    def open(cls, style_id: int) -> StyleIndex:
        return cls._create(cls.Opened, id=style_index_id(style_id), style_id=style_id)

    class VersionsAdded(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:StyleIndex.VersionsAdded"
        version_names: list[str]

        def apply(self, aggregate: StyleIndex) -> None:
            aggregate.version_names.extend(self.version_names)

    def add_versions(self, version_names: list[str]) -> None:
        new = [name for name in dict.fromkeys(version_names) if name not in self.version_names]
        if new:
            self.trigger_event(self.VersionsAdded, version_names=new)

    class FilesRecorded(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:StyleIndex.FilesRecorded"
        file_etags: dict[str, str]

        def apply(self, aggregate: StyleIndex) -> None:
            aggregate.file_etags.update(self.file_etags)

    def record_files(self, file_etags: dict[str, str]) -> None:
        changed = {k: v for k, v in file_etags.items() if self.file_etags.get(k) != v}
        if changed:
            self.trigger_event(self.FilesRecorded, file_etags=changed)

    class FilesForgotten(Aggregate.Event):
        """Files removed from S3: a file put back later (even with the same ETag) is matched again."""

        TOPIC: ClassVar[str] = "loraledger:StyleIndex.FilesForgotten"
        keys: list[str]

        def apply(self, aggregate: StyleIndex) -> None:
            for key in self.keys:
                aggregate.file_etags.pop(key, None)

    def forget_files(self, keys: list[str]) -> None:
        known = [key for key in keys if key in self.file_etags]
        if known:
            self.trigger_event(self.FilesForgotten, keys=known)

    class SequencerSeen(Aggregate.Event):
        """The latest S3 event of a key taken in: an older one arriving later changes nothing."""

        TOPIC: ClassVar[str] = "loraledger:StyleIndex.SequencerSeen"
        key: str
        sequencer: str

        def apply(self, aggregate: StyleIndex) -> None:
            aggregate.sequencers[self.key] = self.sequencer

    def is_news(self, key: str, sequencer: str | None) -> bool:
        """False for an event of `key` no later than one already taken in (a redelivery, or one
        overtaken by a later event); an event without a sequencer is always news."""
        seen = self.sequencers.get(key)
        return sequencer is None or seen is None or sequencer_order(sequencer) > sequencer_order(seen)

    def see_sequencer(self, key: str, sequencer: str | None) -> None:
        if sequencer is not None and self.is_news(key, sequencer):
            self.trigger_event(self.SequencerSeen, key=key, sequencer=sequencer)


def sequencer_order(sequencer: str) -> int:
    """S3's sequencer is a hexadecimal number: of two events of one key, the greater is the later.
    One that is not hexadecimal orders first (it can never hide a real event)."""
    try:
        return int(sequencer, 16)
    except ValueError:
        return -1


class JobIndex(Aggregate):
    TOPIC: ClassVar[str] = "loraledger:JobIndex"

    class Created(Aggregate.Created):  # the library's default creation event; unused here
        TOPIC: ClassVar[str] = "loraledger:JobIndex.Created"

    class Opened(Aggregate.Created):
        TOPIC: ClassVar[str] = "loraledger:JobIndex.Opened"
        base_id: str

    def __init__(self, base_id: str) -> None:
        self.base_id = base_id
        self.job_id: str | None = None
        self.style_id: int | None = None
        self.version_name: str | None = None
        self.parked: list[dict[str, Any]] = []
        self.parked_times: list[datetime] = []  # when each parked report was received
        self.applied_parked = 0

    @classmethod
    def open(cls, job_id: str) -> JobIndex:
        return cls._create(cls.Opened, id=job_index_id(job_id), base_id=job_base_id(job_id))

    @property
    def is_assigned(self) -> bool:
        return self.style_id is not None

    @property
    def waiting_reports(self) -> list[JobReport]:
        """Reports parked for this job and not yet applied, oldest first."""
        return [JobReport(**stored) for stored in self.parked[self.applied_parked :]]

    class Assigned(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:JobIndex.Assigned"
        job_id: str
        style_id: int
        version_name: str

        def apply(self, aggregate: JobIndex) -> None:
            aggregate.job_id = self.job_id
            aggregate.style_id = self.style_id
            aggregate.version_name = self.version_name

    def assign(self, job_id: str, style_id: int, version_name: str) -> None:
        """The job is an attempt of this version; JobIdTaken if it is another version's."""
        if self.is_assigned and (self.style_id, self.version_name) != (style_id, version_name):
            raise JobIdTaken(
                f"job {self.job_id} already belongs to style {self.style_id} {self.version_name}"
            )
        self.trigger_event(self.Assigned, job_id=job_id, style_id=style_id, version_name=version_name)

    class WebhookParked(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:JobIndex.WebhookParked"
        report_json: str
        decision: dict[str, Any]

        def apply(self, aggregate: JobIndex) -> None:
            aggregate.parked.append(blobs.load(self.report_json))
            aggregate.parked_times.append(self.timestamp)

    def park(self, report: JobReport, decision: Decision) -> None:
        """A report no version claims yet: kept until its job is known (its fields, in order)."""
        self.trigger_event(
            self.WebhookParked, report_json=blobs.dump(asdict(report)), decision=decision.as_dict()
        )

    class ParkedApplied(Aggregate.Event):
        TOPIC: ClassVar[str] = "loraledger:JobIndex.ParkedApplied"
        count: int

        def apply(self, aggregate: JobIndex) -> None:
            aggregate.applied_parked += self.count

    def mark_parked_applied(self) -> None:
        waiting = len(self.parked) - self.applied_parked
        if waiting:
            self.trigger_event(self.ParkedApplied, count=waiting)
