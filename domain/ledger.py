"""The Ledger: the application's commands, one method each, over an eventsourcing Application.

It calls no outside system. Adapters turn what S3, RunPod and legacy files say into the values
these commands take; the store behind the Application is chosen by configuration (`env`).
Every command reloads what it needs and saves all its changes in one transaction; a concurrent
writer's conflict (IntegrityError) makes it run again on fresh state.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import IntegrityError

from loraledger.domain import blobs
from loraledger.domain.decisions import Candidate, Decision, Rule, Source
from loraledger.domain.entries import OWNED_FIELDS
from loraledger.domain.indexes import JobIndex, StyleIndex, job_index_id, style_index_id
from loraledger.domain.legacy import (
    LegacyPlan,
    VersionGroup,
    fields_to_take,
    primary_entry,
)
from loraledger.domain.matching import (
    JobMatch,
    ReportDecision,
    StyleCandidates,
    SyncDecision,
    VersionFacts,
    decide_report,
    match_lora_file,
)
from loraledger.domain.naming import (
    LORA_EXTENSION,
    ModelName,
    NameRejected,
    next_version_name,
    parse_lora_key,
    parse_model_name,
    parse_style_id,
    parse_version_name,
    version_number,
)
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.domain.times import parse_time, utc_now
from loraledger.domain.training_version import TrainingVersion, version_id
from loraledger.domain.urls import lora_url

MAX_CONFLICT_RETRIES = 20
T = TypeVar("T")


class LedgerError(Exception):
    """A command that cannot be carried out; the message says why in one line."""


class VersionConflict(LedgerError):
    """Starting a version that is pending or completed (HTTP 409)."""


class VersionNumbersExhausted(VersionConflict):
    """No version name given, and the style already has the highest version number (HTTP 409)."""


class JobIdTaken(LedgerError):
    """RunPod answered a start with a job id that already names another attempt."""


class UnknownVersion(LedgerError):
    """A style or version with no history (HTTP 404)."""


class OwnedFieldError(LedgerError):
    """An attempt to set a field the service derives from events (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Values the rules need from settings: where LoRA files are, and their public URL base."""

    lora_url_base: str | None = None
    s3_prefix: str = ""


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    style_id: int
    version_name: str
    model_name: str
    request_id: str


@dataclass(frozen=True, slots=True)
class ReportResult:
    """How one job report was handled: `applied`, `repeat`, `ignored`, `unmatched` or `running`."""

    result: str
    style_id: int | None
    version_name: str | None
    decisions: tuple[dict[str, Any], ...]


@dataclass(slots=True)
class SyncReport:
    scanned: int = 0
    matched_pending: int = 0
    matched_synced: int = 0
    created: int = 0
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    styles: set[int] = field(default_factory=set)
    events: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report of CONTRACT §4 (the styles touched and the event count are for the caller)."""
        answer = asdict(self)
        del answer["styles"], answer["events"]
        return answer


@dataclass(slots=True)
class ImportReport:
    style_id: int
    source: str
    versions: int = 0
    imported: int = 0
    merged: int = 0
    already_imported: int = 0
    events: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)


class Ledger(Application[UUID]):
    """Commands over TrainingVersion aggregates and the two indexes that find them."""

    name = "loraledger"
    # Cached aggregates are fast-forwarded from the store on every get (so several processes stay
    # consistent) and deep-copied for each command (so a failed command leaves no trace): a get
    # reads only the events recorded since, not a version's whole history.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "50000", "AGGREGATE_CACHE_FASTFORWARD": "y"}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        config: LedgerConfig | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(env)
        self.config = config or LedgerConfig()
        self.clock = clock
        # What the last save to the store raised (None once one succeeds): the service tells from
        # it whether the store refuses writes (disk full, read-only) while it still answers reads.
        self.last_write_error: Exception | None = None

    # ------------------------------------------------------------------ plumbing

    def _retrying(self, command: Callable[[], T]) -> T:
        """Run a command again on fresh state when a concurrent writer got there first.

        Writers that keep colliding back off a little, at random, so one of them wins.
        """
        for attempt in range(MAX_CONFLICT_RETRIES - 1):
            try:
                return command()
            except IntegrityError:
                time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))
        return command()

    def _find(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def find_version(self, style_id: int, version_name: str) -> TrainingVersion | None:
        found = self._find(version_id(style_id, version_name))
        return found if isinstance(found, TrainingVersion) else None

    def _style_index(self, style_id: int) -> StyleIndex:
        found = self._find(style_index_id(style_id))
        return found if isinstance(found, StyleIndex) else StyleIndex.open(style_id)

    def _job_index(self, job_id: str) -> JobIndex:
        found = self._find(job_index_id(job_id))
        return found if isinstance(found, JobIndex) else JobIndex.open(job_id)

    def _save(self, *aggregates: Aggregate | None) -> int:
        """Save in one transaction; returns how many events were written."""
        pending = [a for a in aggregates if a is not None]
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

    def version_names(self, style_id: int) -> list[str]:
        """The style's versions, newest first; empty for a style with no history."""
        found = self._find(style_index_id(style_id))
        names = found.version_names if isinstance(found, StyleIndex) else []
        return sorted(names, key=version_number, reverse=True)

    def style_versions(self, style_id: int) -> list[TrainingVersion]:
        return [
            version
            for name in self.version_names(style_id)
            if (version := self.find_version(style_id, name)) is not None
        ]

    def history(self, style_id: int, version_name: str) -> list[CanMutateAggregate[UUID]]:
        """Every event of the version, oldest first. UnknownVersion if it has none."""
        events = [
            cast(CanMutateAggregate[UUID], e) for e in self.events.get(version_id(style_id, version_name))
        ]
        if not events:
            raise UnknownVersion(f"style {style_id} has no version {version_name}")
        return events

    # ------------------------------------------------------------------ start

    def request_training(
        self,
        style_id: int,
        version_name: str | None,
        *,
        parameters: dict[str, Any],
        description: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> TrainingRequest:
        """Record that a training is about to be sent to RunPod (before anything is sent)."""
        style_id = parse_style_id(style_id)
        extra = dict(fields or {})
        blobs.check(parameters, "parameters")
        blobs.check(description, "description")
        blobs.check_fields(extra, "fields")
        owned = sorted(OWNED_FIELDS.intersection(extra))
        if owned:
            raise OwnedFieldError(f"fields owned by the service cannot be set: {', '.join(owned)}")

        def command() -> TrainingRequest:
            index = self._style_index(style_id)
            version: TrainingVersion | None
            if version_name is None:
                # Looked up once: a version that appears after this look-up makes the save
                # conflict, and the command runs again (never a 409 for a name nobody gave).
                name, version = self._next_free_name(style_id, index.version_names), None
            else:
                name = parse_version_name(version_name)
                version = self.find_version(style_id, name)
            considered: tuple[Candidate, ...] = ()
            if version is None:
                version = TrainingVersion.register(style_id, name)
                rule = Rule.NEW_VERSION
            elif version.status in ("pending", "completed"):
                raise VersionConflict(
                    f"style {style_id} {name} is {version.status}"
                    + ("; a completed LoRA is never overwritten" if version.status == "completed" else "")
                )
            else:
                rule = Rule.RETRY_AFTER_FAILURE
                considered = (Candidate(version.current_id, name, version.status, True, "a new attempt"),)
            request_id = uuid.uuid4().hex
            decision = Decision("start", rule, "requested", {"request_id": request_id}, considered)
            version.request_training(
                request_id=request_id,
                requested_at=self.clock(),
                parameters=parameters,
                description=description,
                fields=extra,
                decision=decision.as_dict(),
            )
            index.add_versions([name])
            self._save(index, version)
            return TrainingRequest(style_id, name, version.model_name, request_id)

        return self._retrying(command)

    def _next_free_name(self, style_id: int, known: Iterable[str]) -> str:
        """The next `V<n>` nobody has taken: a concurrent start may have taken the one the index
        (read a moment earlier) gives; then the one after it is ours, and saving the index,
        which that start changed too, conflicts and runs the command again on fresh state."""
        taken = list(known)
        while True:
            name = next_version_name(taken)
            if name is None:
                highest = max(taken, key=version_number)
                raise VersionNumbersExhausted(
                    f"style {style_id} already has {highest}: {highest} is the highest version "
                    "number, so there is no next one; give a version_name to retry a failed "
                    "version or take a free one"
                )
            if self.find_version(style_id, name) is None:
                return name
            taken.append(name)

    def record_start(self, request: TrainingRequest, job_id: str) -> ReportResult:
        """RunPod accepted the request as `job_id`; apply any webhook that was waiting for it."""

        def command() -> ReportResult:
            version = self._require(request.style_id, request.version_name)
            if job_id in version.job_ids:
                if version.open_request != request.request_id:  # this start was recorded already
                    return ReportResult("repeat", request.style_id, request.version_name, ())
                raise JobIdTaken(
                    f"job {job_id} is an earlier attempt of style {request.style_id} {request.version_name}"
                )
            job = self._job_index(job_id)
            self._check_job_free(job, request.style_id, request.version_name)
            decision = Decision(
                "start",
                Rule.NEW_VERSION if len(version.job_ids) == 0 else Rule.RETRY_AFTER_FAILURE,
                "started",
                {"request_id": request.request_id, "job_id": job_id},
            )
            version.record_start(request_id=request.request_id, job_id=job_id, decision=decision.as_dict())
            job.assign(job_id, request.style_id, request.version_name)
            decisions = (decision.as_dict(), *self._apply_parked(job, version))
            self._save(job, version)
            return ReportResult("applied", request.style_id, request.version_name, decisions)

        return self._retrying(command)

    def record_start_failure(self, request: TrainingRequest, reason: str) -> None:
        """RunPod refused or could not be reached: the attempt is failed, with the reason."""

        def command() -> None:
            version = self._require(request.style_id, request.version_name)
            if version.open_request != request.request_id:
                return
            decision = Decision("start", Rule.START_REFUSED, "failed", {"request_id": request.request_id})
            self._fail_without_report(version, None, reason, decision)

        self._retrying(command)

    def _fail_without_report(
        self, version: TrainingVersion, job_id: str | None, reason: str, decision: Decision
    ) -> None:
        """A failure the service concluded itself (RunPod refused, or forgot the job)."""
        version.fail(
            job_id=job_id, failed_at=self.clock(), error=reason, report={}, decision=decision.as_dict()
        )
        self._save(version)

    def _require(self, style_id: int, version_name: str) -> TrainingVersion:
        version = self.find_version(style_id, version_name)
        if version is None:
            raise UnknownVersion(f"style {style_id} has no version {version_name}")
        return version

    def _check_job_free(self, job: JobIndex, style_id: int, version_name: str) -> None:
        if job.is_assigned and (job.style_id, job.version_name) != (style_id, version_name):
            raise JobIdTaken(f"job {job.job_id} already belongs to style {job.style_id} {job.version_name}")

    def _apply_parked(self, job: JobIndex, version: TrainingVersion) -> list[dict[str, Any]]:
        decisions = []
        for stored in job.waiting_reports:
            report = JobReport(**stored)
            match = JobMatch(Rule.PARKED_APPLIED, _facts(version), "webhook parked until the job was known")
            outcome = decide_report(report, match, "webhook", self._derived_url(version))
            self._apply_report_decision(version, report, outcome)
            decisions.append(outcome.decision.as_dict())
        job.mark_parked_applied()
        return decisions

    # ------------------------------------------------------------------ job reports

    def apply_report(self, report: JobReport, source: Source = "webhook") -> ReportResult:
        """A webhook (or a `/status` answer) about a job's end: match it, decide, record."""

        def command() -> ReportResult:
            job = self._find(job_index_id(report.job_id))
            job = job if isinstance(job, JobIndex) else None
            version, match = self._match_report(report, job)
            outcome = decide_report(report, match, source, self._derived_url(version) if version else None)
            if outcome.outcome == "running":
                return ReportResult("running", None, None, (outcome.decision.as_dict(),))
            if version is None:
                job = job or JobIndex.open(report.job_id)
                job.park(_report_record(report), outcome.decision.as_dict())
                self._save(job)
                return ReportResult("unmatched", None, None, (outcome.decision.as_dict(),))
            if outcome.outcome in ("complete", "fail") and (job is None or not job.is_assigned):
                # Matched by model name: from now on the job is known by its id, and what was
                # parked for it is superseded by this report.
                job = job or JobIndex.open(report.job_id)
                job.assign(report.job_id, version.style_id, version.version_name)
                job.mark_parked_applied()
            self._apply_report_decision(version, report, outcome)
            self._save(job, version)
            result = {"complete": "applied", "fail": "applied", "repeat": "repeat"}.get(
                outcome.outcome, "ignored"
            )
            return ReportResult(result, version.style_id, version.version_name, (outcome.decision.as_dict(),))

        return self._retrying(command)

    def _match_report(
        self, report: JobReport, job: JobIndex | None
    ) -> tuple[TrainingVersion | None, JobMatch]:
        if job is not None and job.is_assigned:
            assert job.style_id is not None and job.version_name is not None
            version = self.find_version(job.style_id, job.version_name)
            if version is not None:
                if job.job_id == report.job_id:
                    rule, why = Rule.JOB_ID_EXACT, f"job id {report.job_id}"
                else:
                    rule, why = Rule.JOB_ID_SUFFIX, f"job id {job.job_id} ~ {report.job_id}"
                return version, JobMatch(rule, _facts(version), why)
        model = _model_of(report.model_name)
        if model is not None:
            version = self.find_version(model.style_id, model.version_name)
            if version is not None:
                why = f"model name {model.canonical}, job {report.job_id} not known"
                return version, JobMatch(Rule.MODEL_NAME, _facts(version), why)
            why = f"job {report.job_id} not known and style {model.style_id} has no {model.version_name}"
            return None, JobMatch(Rule.UNMATCHED, None, why)
        return None, JobMatch(Rule.UNMATCHED, None, f"job {report.job_id} not known, no model name")

    def _apply_report_decision(
        self, version: TrainingVersion, report: JobReport, outcome: ReportDecision
    ) -> None:
        decision = outcome.decision.as_dict()
        if outcome.outcome == "complete":
            version.complete(
                job_id=outcome.attempt_id,
                completed_at=self.clock(),
                lora_url=outcome.lora_url,
                report=report.summary,
                decision=decision,
            )
        elif outcome.outcome == "fail":
            version.fail(
                job_id=outcome.attempt_id,
                failed_at=self.clock(),
                error=outcome.error or "training failed",
                report=report.summary,
                decision=decision,
            )
        elif outcome.outcome == "repeat":
            version.record_repeat(
                job_id=report.job_id,
                status=report.status,
                lora_url=outcome.lora_url,
                decision=decision,
            )
        else:
            version.record_ignored(job_id=report.job_id, status=report.status, decision=decision)

    def _derived_url(self, version: TrainingVersion) -> str | None:
        if self.config.lora_url_base is None:
            return None
        key = self.config.s3_prefix + version.model_name + LORA_EXTENSION
        return lora_url(self.config.lora_url_base, key)

    def fail_stale(
        self,
        style_id: int,
        version_name: str,
        *,
        job_id: str | None,
        rule: str,
        reason: str,
    ) -> bool:
        """Reconcile's last word on an attempt RunPod no longer knows, or never confirmed."""

        def command() -> bool:
            version = self._require(style_id, version_name)
            if version.status != "pending" or (job_id is not None and version.current_id != job_id):
                return False
            decision = Decision(
                "reconcile",
                rule,
                "fail",
                {"job_id": job_id},
                (Candidate(version.current_id, version_name, version.status, True, reason),),
            )
            self._fail_without_report(version, job_id, reason, decision)
            return True

        return self._retrying(command)

    # ------------------------------------------------------------------ S3 sync

    def observe_lora_files(
        self,
        objects: Iterable[LoraObject],
        *,
        url_base: str,
        only_style: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """Apply the two-pass matching to every listed object, one transaction per style."""
        report = SyncReport()
        by_style: dict[int, list[tuple[LoraObject, ModelName]]] = {}
        for lora in objects:
            report.scanned += 1
            try:
                model = parse_lora_key(lora.key)
            except NameRejected as rejected:
                report.skipped.append({"key": lora.key, "reason": rejected.reason})
                continue
            if only_style is None or model.style_id == only_style:
                by_style.setdefault(model.style_id, []).append((lora, model))
        for style_id in sorted(by_style):
            files = by_style[style_id]
            self._retrying(functools.partial(self._sync_style, style_id, files, url_base, report))
            if progress is not None:
                progress(len(files))
        return report

    def _sync_style(
        self,
        style_id: int,
        files: Sequence[tuple[LoraObject, ModelName]],
        url_base: str,
        report: SyncReport,
    ) -> None:
        index = self._style_index(style_id)
        fresh = [(lora, model) for lora, model in files if index.file_etags.get(lora.key) != lora.etag]
        unchanged = len(files) - len(fresh)
        if not fresh:
            report.unchanged += unchanged
            return
        versions = {v.version_name: v for v in self.style_versions(style_id)}
        candidates = StyleCandidates(_facts(v) for v in versions.values())
        now = self.clock()
        counts = {"complete": 0, "synced": 0, "create": 0, "unchanged": 0}
        skipped: list[dict[str, str]] = []
        decisions: list[dict[str, Any]] = []
        for lora, model in fresh:
            offered = lora_url(url_base, lora.key)
            decided = match_lora_file(lora, model, candidates, offered, None)
            decisions.append(decided.decision.as_dict())
            if decided.outcome == "skip":
                skipped.append({"key": lora.key, "reason": f"{model.version_name}: {decided.reason}"})
                continue
            version = self._apply_sync_decision(versions, style_id, lora, decided, now)
            counts[decided.outcome] += 1
            candidates.put(_facts(version))
        # An empty file's ETag is not recorded: it is skipped (and reported) on every sync until
        # the real file replaces it, and a style that only has empty files gets no index at all.
        recorded = {lora.key: lora.etag for lora, _ in fresh if lora.size > 0}
        index.add_versions(list(versions))
        index.record_files(recorded)
        written = self._save(index if versions or recorded else None, *versions.values())
        report.matched_pending += counts["complete"]
        report.matched_synced += counts["synced"]
        report.created += counts["create"]
        report.unchanged += unchanged
        report.skipped.extend(skipped)
        report.decisions.extend(decisions)
        report.events += written
        if written:
            report.styles.add(style_id)

    def _apply_sync_decision(
        self,
        versions: dict[str, TrainingVersion],
        style_id: int,
        lora: LoraObject,
        decided: SyncDecision,
        now: datetime,
    ) -> TrainingVersion:
        assert decided.version_name is not None
        decision = decided.decision.as_dict()
        if decided.outcome == "create":
            assert decided.lora_url is not None
            version = TrainingVersion.from_s3(
                style_id,
                decided.version_name,
                key=lora.key,
                etag=lora.etag,
                size=lora.size,
                last_modified=lora.last_modified,
                lora_url=decided.lora_url,
                synced_at=now,
                decision=decision,
            )
            versions[decided.version_name] = version
            return version
        version = versions[decided.version_name]
        version.sync_lora(
            key=lora.key,
            etag=lora.etag,
            size=lora.size,
            last_modified=lora.last_modified,
            lora_url=decided.lora_url,
            completes=decided.outcome == "complete",
            synced_at=now,
            decision=decision,
        )
        return version

    # ------------------------------------------------------------------ import

    def import_plan(self, plan: LegacyPlan, source: str, *, dry_run: bool = False) -> ImportReport:
        """Record a legacy document's versions; a repeat of the same document records nothing."""

        def command() -> ImportReport:
            report = ImportReport(plan.style_id, source, versions=len(plan.groups))
            index = self._style_index(plan.style_id)
            touched: list[Aggregate] = [index]
            for group in plan.groups:
                touched.extend(self._import_group(plan.style_id, group, source, report))
            index.add_versions([group.version_name for group in plan.groups])
            if dry_run:
                report.events = sum(len(a.pending_events) for a in touched)
            else:
                report.events = self._save(*touched)
            return report

        return self._retrying(command)

    def _import_group(
        self, style_id: int, group: VersionGroup, source: str, report: ImportReport
    ) -> list[Aggregate]:
        version = self.find_version(style_id, group.version_name)
        new_entries = [
            (raw, rule)
            for raw, rule in [(group.primary, Rule.IMPORTED), *group.merged]
            if version is None or raw.fingerprint not in version.imported_fingerprints
        ]
        report.already_imported += len(group.entries) - len(new_entries)
        if not new_entries:
            return []
        if version is None:
            primary = primary_entry(group)
            notes = (
                (f"name {group.primary.data.get('name')!r} read as {group.version_name}",)
                if (group.primary_reading)
                else ()
            )
            decision = Decision(
                "import",
                Rule.IMPORTED if not group.merged else group.merged[0][1],
                "imported",
                {"source": source, "position": group.primary.position},
                tuple(
                    Candidate(
                        _raw_id(raw.data),
                        str(raw.data.get("name")),
                        raw.data.get("status"),
                        raw is group.primary,
                        "kept: has the job id and parameters"
                        if raw is group.primary and group.merged
                        else ("the only entry" if raw is group.primary else "merged into the kept entry"),
                    )
                    for raw in group.entries
                ),
                notes,
            )
            version = TrainingVersion.from_import(
                style_id,
                group.version_name,
                source=source,
                entry=primary,
                fingerprint=group.primary.fingerprint,
                decision=decision.as_dict(),
            )
            report.decisions.append(decision.as_dict())
            report.imported += 1
            new_entries = new_entries[1:]
        for raw, rule in new_entries:
            decision = Decision(
                "import",
                rule if rule != Rule.IMPORTED else Rule.MERGED_INTO_RECORDED,
                "merged",
                {"source": source, "position": raw.position},
                (
                    Candidate(version.current_id, version.version_name, version.status, True, "kept entry"),
                    Candidate(
                        _raw_id(raw.data),
                        str(raw.data.get("name")),
                        raw.data.get("status"),
                        False,
                        "merged in",
                    ),
                ),
            )
            version.merge_entry(
                source=source,
                raw_entry=raw.data,
                taken=fields_to_take(version.entry, raw.data),
                fingerprint=raw.fingerprint,
                decision=decision.as_dict(),
            )
            report.decisions.append(decision.as_dict())
            report.merged += 1
        touched: list[Aggregate] = [version]
        touched.extend(self._index_job(version))
        return touched

    def _index_job(self, version: TrainingVersion) -> list[Aggregate]:
        """An imported attempt's job id finds its version; a webhook parked for it is applied."""
        job_id = version.current_id
        if job_id is None or job_id == version.model_name or job_id not in version.job_ids:
            return []
        job = self._job_index(job_id)
        if job.is_assigned:
            return []
        job.assign(job_id, version.style_id, version.version_name)
        self._apply_parked(job, version)
        return [job]

    # ------------------------------------------------------------------ annotations

    def annotate(
        self, style_id: int, version_name: str, set_fields: dict[str, Any], cleared: list[str]
    ) -> TrainingVersion:
        owned = sorted(OWNED_FIELDS.intersection([*set_fields, *cleared]))
        if owned:
            raise OwnedFieldError(f"fields owned by the service cannot be changed: {', '.join(owned)}")
        blobs.check_fields(set_fields, "fields")
        blobs.check(dict.fromkeys(cleared), "cleared fields")  # the same key rules as for set ones

        def command() -> TrainingVersion:
            version = self._require(style_id, version_name)
            changes = {
                key: value
                for key, value in set_fields.items()
                if key not in version.entry or blobs.dump(version.entry[key]) != blobs.dump(value)
            }
            clear = [name for name in dict.fromkeys(cleared) if name in version.entry]
            if changes or clear:
                version.annotate(set_fields=changes, cleared=clear)
                self._save(version)
            return version

        return self._retrying(command)

    # ------------------------------------------------------------------ reconcile

    def requested_at(self, version: TrainingVersion) -> datetime:
        """When the version's current attempt was started (its entry's `timestamp`)."""
        started = version.entry.get("timestamp")
        try:
            return parse_time(started) if isinstance(started, str) else self.clock()
        except ValueError:  # an imported entry with an unreadable time counts as just started
            return self.clock()

    def pending_attempts(
        self, versions: Iterable[TrainingVersion], older_than: timedelta
    ) -> Iterator[TrainingVersion]:
        """Pending versions whose request is older than the given age."""
        cutoff = self.clock() - older_than
        for version in versions:
            if version.status == "pending" and self.requested_at(version) <= cutoff:
                yield version


def _raw_id(entry: dict[str, Any]) -> str | None:
    """A legacy entry's id as text: decisions hold only plain values (see domain/blobs.py)."""
    value = entry.get("id")
    return value if isinstance(value, str) or value is None else blobs.dump(value)


def _facts(version: TrainingVersion) -> VersionFacts:
    return VersionFacts(
        name=version.version_name,
        id=version.current_id,
        status=version.status,
        lora_url=version.lora_url,
        job_ids=tuple(version.job_ids),
        reported_jobs=frozenset(version.reported_jobs),
    )


def _model_of(model_name: str | None) -> ModelName | None:
    if not model_name:
        return None
    stem = model_name[: -len(LORA_EXTENSION)] if model_name.endswith(LORA_EXTENSION) else model_name
    try:
        return parse_model_name(stem)
    except NameRejected:
        return None


def _report_record(report: JobReport) -> dict[str, Any]:
    return {
        "job_id": report.job_id,
        "status": report.status,
        "output_status": report.output_status,
        "model_name": report.model_name,
        "lora_url": report.lora_url,
        "error": report.error,
        "summary": report.summary,
    }
