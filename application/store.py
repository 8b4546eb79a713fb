"""The store plumbing every use case shares: the eventsourcing Application, conflict retries, finders.

A command reloads what it needs, changes aggregates and saves them all in one transaction
(`save_all`); a concurrent writer's conflict (IntegrityError) makes `retrying` run it again on
fresh state. `find` and `save_all` are the two hooks a subclass may override (the benchmarks
gather many commands' saves into one transaction that way).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import IntegrityError

from loraledger.domain.errors import UnknownVersion
from loraledger.domain.indexes import JobIndex, StyleIndex, job_index_id, style_index_id
from loraledger.domain.naming import version_number
from loraledger.domain.skips import SKIPPED_FILES_ID, SkippedFiles
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion, version_id

MAX_CONFLICT_RETRIES = 20
T = TypeVar("T")


class LedgerStore(Application[UUID]):
    """TrainingVersion aggregates and the two indexes that find them, in one event store."""

    name = "loraledger"  # the store's table names derive from it: never change it
    # Cached aggregates are fast-forwarded from the store on every get (so several processes stay
    # consistent) and deep-copied for each command (so a failed command leaves no trace): a get
    # reads only the events recorded since, not a version's whole history.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "50000", "AGGREGATE_CACHE_FASTFORWARD": "y"}

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        # What the last save to the store raised (None once one succeeds): the service tells from
        # it whether the store refuses writes (disk full, read-only) while it still answers reads.
        self.last_write_error: Exception | None = None
        self._gathering = threading.local()  # `.current`: this thread's gathered saves, if any

    def retrying(self, command: Callable[[], T]) -> T:
        """Run a command again on fresh state when a concurrent writer got there first.

        Writers that keep colliding back off a little, at random, so one of them wins.
        """
        for attempt in range(MAX_CONFLICT_RETRIES - 1):
            try:
                return command()
            except IntegrityError:
                time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))
        return command()

    def find(self, aggregate_id: UUID) -> Any | None:
        gathered: _Gathered | None = getattr(self._gathering, "current", None)
        if gathered is not None and aggregate_id in gathered.seen:
            return gathered.seen[aggregate_id]
        try:
            found: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if gathered is not None:
            gathered.seen[aggregate_id] = found
        return found

    @contextmanager
    def gathering(self) -> Iterator[None]:
        """Several commands of this thread as one transaction: their saves are gathered and
        written together when the block ends, or not at all if it raises; meanwhile each of them
        finds the aggregates the others changed (as it would after their own transactions)."""
        gathered = _Gathered()
        self._gathering.current = gathered
        try:
            yield
        finally:
            self._gathering.current = None
        self.save_all(*gathered.dirty.values())

    def save_all(self, *aggregates: Aggregate | None) -> int:
        """Save in one transaction; returns how many events were written (gathering: how many
        events these aggregates add to the transaction)."""
        pending = [a for a in aggregates if a is not None]
        gathered: _Gathered | None = getattr(self._gathering, "current", None)
        if gathered is not None:
            return gathered.add(pending)
        count = sum(len(a.pending_events) for a in pending)
        if count:
            try:
                self.save(*pending)
            except IntegrityError:
                raise  # a concurrent writer got there first: says nothing about the store
            except Exception as error:
                self.last_write_error = error
                raise
            self.last_write_error = None
        return count

    # `kind` says whose id `style_id` is: a style's (the default) or an actor's (CONTRACT §8).

    def find_version(
        self, style_id: int, version_name: str, kind: SubjectKind = STYLE
    ) -> TrainingVersion | None:
        found = self.find(version_id(style_id, version_name, kind))
        return found if isinstance(found, TrainingVersion) else None

    def require_version(self, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> TrainingVersion:
        version = self.find_version(style_id, version_name, kind)
        if version is None:
            raise UnknownVersion(f"{kind} {style_id} has no version {version_name}")
        return version

    def style_index(self, style_id: int, kind: SubjectKind = STYLE) -> StyleIndex:
        found = self.find(style_index_id(style_id, kind))
        return found if isinstance(found, StyleIndex) else StyleIndex.open(style_id, kind)

    def find_job(self, job_id: str) -> JobIndex | None:
        found = self.find(job_index_id(job_id))
        return found if isinstance(found, JobIndex) else None

    def job_index(self, job_id: str) -> JobIndex:
        return self.find_job(job_id) or JobIndex.open(job_id)

    def skipped_files(self) -> SkippedFiles:
        found = self.find(SKIPPED_FILES_ID)
        return found if isinstance(found, SkippedFiles) else SkippedFiles.open()

    def version_names(self, style_id: int, kind: SubjectKind = STYLE) -> list[str]:
        """The subject's versions, newest first; empty for a subject with no history."""
        found = self.find(style_index_id(style_id, kind))
        names = found.version_names if isinstance(found, StyleIndex) else []
        return sorted(names, key=version_number, reverse=True)

    def style_versions(self, style_id: int, kind: SubjectKind = STYLE) -> list[TrainingVersion]:
        return [
            version
            for name in self.version_names(style_id, kind)
            if (version := self.find_version(style_id, name, kind)) is not None
        ]

    def indexed_versions(self, index: StyleIndex) -> list[TrainingVersion]:
        """The index's versions, newest first, each rebuilt from its events for this caller alone.

        Not through the aggregate cache: a command that reads many versions once (a sync) needs
        neither the cache's copy of each nor to fill the cache with them.
        """
        versions: list[TrainingVersion] = []
        for name in sorted(index.version_names, key=version_number, reverse=True):
            found = project_aggregate(None, self.events.get(version_id(index.style_id, name, index.kind)))
            if isinstance(found, TrainingVersion):
                versions.append(found)
        return versions

    def history(
        self, style_id: int, version_name: str, kind: SubjectKind = STYLE
    ) -> list[CanMutateAggregate[UUID]]:
        """Every event of the version, oldest first. UnknownVersion if it has none."""
        events = [
            cast(CanMutateAggregate[UUID], e)
            for e in self.events.get(version_id(style_id, version_name, kind))
        ]
        if not events:
            raise UnknownVersion(f"{kind} {style_id} has no version {version_name}")
        return events


class _Gathered:
    """The aggregates a gathering block found or saved, and the events each already counted."""

    def __init__(self) -> None:
        self.seen: dict[UUID, Any] = {}
        self.dirty: dict[UUID, Aggregate] = {}
        self._counted: dict[UUID, int] = {}

    def add(self, aggregates: list[Aggregate]) -> int:
        added = 0
        for aggregate in aggregates:
            self.seen[aggregate.id] = aggregate
            pending = len(aggregate.pending_events)
            added += pending - self._counted.get(aggregate.id, 0)
            self._counted[aggregate.id] = pending
            if pending:
                self.dirty[aggregate.id] = aggregate
        return added
