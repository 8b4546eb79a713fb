"""The service as the edges see it: one method per route and CLI command.

Each command runs one adapter flow or ledger command, then hands the projection writer of its
subjects' kind (styles', or actors': CONTRACT §8) the subjects it touched (api/bootstrap.py
builds the parts; projections/writer.py writes the files), so a command means the same from either
edge and a 2xx answer is already on disk. Methods return what the edges render: an entry, a
history, a document's text, a report.

Over 350 lines because it is the one list of what the edges can call (every route and command,
with its outcome logging): split, an edge would have to know which part holds a command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.adapters.file_watch import FileWatcher
from loraledger.adapters.files import ProjectionFileWriter
from loraledger.adapters.legacy_files import find_legacy_files, read_legacy_file
from loraledger.adapters.metrics import timed_run
from loraledger.adapters.replay_files import MirroredFolderSink
from loraledger.adapters.s3_sync import sync_bucket
from loraledger.adapters.store import store_answers, write_refusal
from loraledger.api.outcomes import log_decision, log_import_outcomes, log_outcome, log_sync_outcomes
from loraledger.api.page_reads import StyleView, TimelineItem, style_view, timeline
from loraledger.api.render import history_json
from loraledger.api.settings import Settings
from loraledger.api.state import OperatingState, seconds_since
from loraledger.application.imports import ImportReport
from loraledger.application.ledger import Ledger
from loraledger.application.queries import Located
from loraledger.application.reconcile import PendingVersion, ReconcileReport
from loraledger.application.reports import ReportResult
from loraledger.application.sync import SyncReport
from loraledger.domain import doctor
from loraledger.domain.errors import OwnedFieldError
from loraledger.domain.legacy import LegacyPlan
from loraledger.domain.subjects import ACTOR, STYLE, SUBJECT_KINDS, SubjectKind
from loraledger.domain.times import format_time, parse_time
from loraledger.domain.training_version import TrainingVersion
from loraledger.projections.replay import first_event_at, replay
from loraledger.projections.runner import SubjectSummary
from loraledger.projections.writer import CatchUp, ProjectionWriter

if TYPE_CHECKING:
    from loraledger.adapters.runpod_payloads import JobPayload
    from loraledger.adapters.s3_events import QueueConsumer
    from loraledger.api.bootstrap import Clients
    from loraledger.domain.observations import S3Change

STORE_CHECK_SECONDS = 1.0
READY_LAG_SECONDS = 5.0  # CONTRACT §10: /readyz is 503 when the files are further behind the log
# Legacy entries recorded per transaction by an import (whole files; a bounded insert and redo).
IMPORT_BATCH_ENTRIES = 2_000

__all__ = [
    "ImportOutcome",
    "LegacyCheck",
    "OperatingState",
    "Rebuilt",
    "ReplayTargetRefused",
    "Service",
    "check_legacy_files",
    "check_replay_target",
]


class ReplayTargetRefused(ValueError):
    """`replay --out` names the live output folder (or one inside it, or one holding it)."""


def check_replay_target(live_dir: Path, out_dir: Path) -> None:
    """Refuse to replay into the live output folder: its files would be replaced by old states."""
    live, out = live_dir.resolve(), out_dir.resolve()
    if out == live or out.is_relative_to(live) or live.is_relative_to(out):
        where = "is" if out == live else "is inside" if out.is_relative_to(live) else "holds"
        raise ReplayTargetRefused(
            f"--out {out_dir} {where} the live output folder {live} (LORALEDGER_OUTPUT_DIR);"
            " replay writes old states, so give it a folder of its own"
        )


@dataclass(slots=True)
class ImportOutcome:
    """Per file: the import report, or the reasons the file was refused."""

    path: Path
    report: ImportReport | None
    errors: tuple[str, ...]
    problems: tuple[str, ...] = ()


@dataclass(slots=True)
class Rebuilt(CatchUp):
    """What a rebuild wrote: the styles' files (as any write turn says), and the actors' files."""

    actors: CatchUp = field(default_factory=lambda: CatchUp(0))


@dataclass(slots=True)
class LegacyCheck:
    """Per legacy file (`doctor`): what is wrong with it; nothing when it is fine."""

    path: Path
    problems: list[str]


def check_legacy_files(
    path: Path,
    style_id: int | None,
    settings: Settings | None = None,
    now: datetime | None = None,
    kind: SubjectKind = STYLE,
) -> list[LegacyCheck]:
    """Duplicates and inconsistencies of every legacy file under `path` (styles', or actors' by
    `kind`); opens no store.

    With `settings` (and `now`), also attempts pending longer than LORALEDGER_RECONCILE_AFTER whose
    job is unknown or ended (RunPod is asked when it is configured) and entries synced in half,
    each with the command that fixes it (domain/doctor.py)."""
    checks = []
    asking = _RunPodAsker(settings) if settings is not None else None
    for found in find_legacy_files(path, style_id, kind):
        read = read_legacy_file(found)
        problems = list(read.errors) + (read.plan.problems if read.plan else [])
        if read.plan is not None and settings is not None and asking is not None and now is not None:
            entries = [raw.data for group in read.plan.groups for raw in group.entries]
            older_than = settings.effective_reconcile_after
            says = asking.ask(doctor.jobs_to_ask(entries, now, older_than), problems)
            findings = doctor.check_entries(
                read.plan.style_id,
                entries,
                now=now,
                older_than=older_than,
                runpod_says=says,
                source=str(path),
            )
            problems.extend(finding.line() for finding in findings)
        checks.append(LegacyCheck(found.path, problems))
    if asking is not None:
        asking.close()
    return checks


class _RunPodAsker:
    """RunPod's `/status` for `doctor`, when RunPod is configured (None answers: not asked)."""

    def __init__(self, settings: Settings) -> None:
        from loraledger.api.bootstrap import Clients  # builds the RunPod client

        configured = settings.runpod_endpoint_id and settings.runpod_api_key is not None
        self.clients = Clients(settings) if configured else None

    def ask(self, jobs: list[str], problems: list[str]) -> dict[str, str | None] | None:
        if self.clients is None:
            return None
        from loraledger.application.reconcile import StatusUnreadable

        says: dict[str, str | None] = {}
        for job in jobs:
            try:
                report = self.clients.runpod_status.status(job)
            except StatusUnreadable as error:
                problems.append(f"RunPod could not be asked about job {job}: {error}")
                continue
            says[job] = report.status if report is not None else doctor.GONE
        return says

    def close(self) -> None:
        if self.clients is not None:
            self.clients.close()


class Service:
    """Settings, the ledger, the projection writer, the files and the clients, behind one set of
    methods. Built by `api.bootstrap.open_service`."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        projection: ProjectionWriter,
        files: ProjectionFileWriter,
        clients: Clients,
        actor_projection: ProjectionWriter,
        actor_files: ProjectionFileWriter,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.projection = projection
        self.files = files
        self.clients = clients
        self.actor_projection = actor_projection
        self.actor_files = actor_files
        self._store_checked = (float("-inf"), True)
        self._watcher: FileWatcher | None = None

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self.projection.close()
        self.actor_projection.close()
        self.clients.close()
        self.ledger.close()

    # ------------------------------------------------------------------ the files

    def _projection(self, kind: SubjectKind) -> ProjectionWriter:
        return self.actor_projection if kind == ACTOR else self.projection

    def catch_up(self) -> CatchUp:
        """Bring the files up to date; a file someone else had changed is kept and reported.
        Returns the styles' turn (the actors' files are brought up to date too)."""
        self.actor_projection.catch_up()
        return self.projection.catch_up()

    def start_writer(self) -> None:
        """Server mode: the files are written by the projections' background threads, which a
        change to a file wakes (an edit by someone else is taken in within 2 seconds)."""
        self.projection.start_background()
        self.actor_projection.start_background()

        def wake() -> None:
            self.projection.wake()
            self.actor_projection.wake()

        self._watcher = FileWatcher(Path(self.settings.output_dir), wake)
        self._watcher.start()

    def take_backups(self) -> list[Path]:
        """Backups kept since the last call (for the command's answer)."""
        return self.projection.take_backups() + self.actor_projection.take_backups()

    def rebuild(self) -> Rebuilt:
        """Every file regenerated from the whole history (`failed`: subjects not writable)."""
        styles = self.projection.rebuild()
        actors = self.actor_projection.rebuild()
        return Rebuilt(**{part.name: getattr(styles, part.name) for part in fields(CatchUp)}, actors=actors)

    def replay(self, until: datetime, out_dir: Path) -> list[int]:
        """The files as they were at `until`, at their live paths under `out_dir` (made even when
        no style had a version then); the actors' are replay_actors'."""
        check_replay_target(Path(self.settings.output_dir), out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return replay(self.ledger.store, until, MirroredFolderSink(self.files, out_dir))

    def first_event_at(self) -> datetime | None:
        """When the history begins (None: it is empty)."""
        return first_event_at(self.ledger.store)

    def replay_actors(self, until: datetime, out_dir: Path) -> list[int]:
        """The actors' files as they were at `until`, into `out_dir` in the actors' layout."""
        check_replay_target(Path(self.settings.output_dir), out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return replay(self.ledger.store, until, MirroredFolderSink(self.actor_files, out_dir), ACTOR)

    # ------------------------------------------------------------------ commands

    def start(
        self,
        style_id: int,
        version_name: str | None,
        *,
        parameters: dict[str, Any],
        description: str | None,
        extra_input: dict[str, Any],
        fields: dict[str, Any],
        kind: SubjectKind = STYLE,
    ) -> dict[str, Any]:
        """Record the request, ask RunPod, record its answer; returns the version's entry."""
        from loraledger.adapters.training_start import start_training  # with the RunPod client

        # A version that cannot be started is a 409 whatever the settings (before they are needed).
        self.ledger.start.check_startable(style_id, version_name, kind)
        webhook_url = self.settings.webhook_url()
        runpod = self.clients.runpod
        try:
            started = start_training(
                self.ledger.start,
                runpod,
                style_id=style_id,
                version_name=version_name,
                parameters=parameters,
                description=description,
                extra_input=extra_input,
                fields=fields,
                model_name_field=self.settings.runpod_model_name_field,
                webhook_url=webhook_url,
                kind=kind,
            )
        finally:
            self._projection(kind).after_command()
        request = started.request
        log_outcome(
            "start",
            "started",
            style_id=request.style_id,
            version=request.version_name,
            job_id=started.job_id,
            rule=started.rule,
            kind=kind,
        )
        return self.ledger.queries.entry(request.style_id, request.version_name, kind)

    def cancel(self, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> dict[str, Any]:
        """Ask RunPod to cancel the pending training, and record it failed as cancelled."""
        from loraledger.adapters.training_cancel import cancel_training  # with the RunPod client

        try:
            version, job_id = cancel_training(
                self.ledger.cancel, self.clients.runpod, style_id, version_name, kind
            )
        finally:
            self._projection(kind).after_command()
        log_outcome("cancel", "cancelled", style_id=style_id, version=version_name, job_id=job_id, kind=kind)
        return version.document_entry()

    def receive_job_payload(self, payload: JobPayload) -> ReportResult:
        from loraledger.adapters.runpod_payloads import report_from_payload  # loaded by the HTTP edge

        result = self.ledger.reports.apply(report_from_payload(payload), source="webhook")
        self._projection(result.kind).after_command()
        for decision in result.decisions:
            log_decision(
                "webhook",
                decision,
                style_id=result.style_id,
                version=result.version_name,
                answer=result.result,
                kind=result.kind,
            )
        return result

    def annotate(
        self,
        style_id: int,
        version_name: str,
        set_fields: dict[str, Any],
        cleared: list[str],
        kind: SubjectKind = STYLE,
    ) -> dict[str, Any]:
        """Set or clear user fields, and `hidden` (true: not in the file; false: shown again);
        returns the version's entry."""
        set_fields, cleared = dict(set_fields), list(cleared)
        hidden = set_fields.pop("hidden", None)
        if "hidden" in cleared or (hidden is not None and not isinstance(hidden, bool)):
            raise OwnedFieldError("hidden is true (not shown in the file) or false (shown)")
        if hidden is not None:
            version = self.ledger.file_edits.set_hidden(style_id, version_name, hidden, kind)
        if set_fields or cleared or hidden is None:
            version = self.ledger.annotations.annotate(style_id, version_name, set_fields, cleared, kind)
        self._projection(kind).after_command()
        log_outcome(
            "annotate",
            "annotated",
            style_id=style_id,
            version=version_name,
            job_id=version.current_id,
            fields=sorted([*set_fields, *cleared]),
            kind=kind,
        )
        return version.document_entry()

    def sync(
        self,
        only_style: int | None = None,
        on_listed: Callable[[int], None] | None = None,
        only_actor: int | None = None,
    ) -> SyncReport:
        """One sync of both prefixes (the actors' when LORALEDGER_S3_ACTOR_PREFIX is set), one
        report; `only_style` or `only_actor` keeps one subject's files."""
        bucket = self.settings.require_bucket()
        before = self.projection.head()
        url_base = self.settings.effective_lora_url_base
        assert url_base is not None  # derived from the bucket when not set
        texts: dict[int, str] = {}
        actor_texts: dict[int, str] = {}
        style_renderer = self.projection.renderer(texts)
        actor_renderer = self.actor_projection.renderer(actor_texts)

        def on_saved(subject_id: int, versions: list[TrainingVersion]) -> None:
            render = actor_renderer if versions and versions[0].kind == ACTOR else style_renderer
            if render is not None:
                render(subject_id, versions)

        with timed_run("sync"):
            report = sync_bucket(
                self.ledger.sync,
                self.clients.s3,
                bucket=bucket,
                prefix=self.settings.s3_prefix,
                url_base=url_base,
                only_style=only_style,
                on_listed=on_listed,
                on_saved=on_saved,
                actor_prefix=self.settings.s3_actor_prefix,
                only_actor=only_actor,
            )
        self.projection.after_command(report.styles, before, texts)
        self.actor_projection.after_command(report.actors, before, actor_texts)
        report.waiting = {s: why for s in sorted(report.styles) if (why := self.files.waiting_reason(s))}
        log_sync_outcomes(report)
        return report

    def take_s3_change(self, change: S3Change) -> str:
        """One S3 event's change, recorded (or skipped, saying why); returns its outcome."""
        result = self.ledger.s3_events.take(change)
        if result.versions:
            self._projection(result.kind).after_command()
        rule = result.decisions[0].rule if result.decisions else None
        log_outcome(
            "s3-event",
            result.outcome.value,
            style_id=result.style_id,
            version=result.version_name,
            rule=rule,
            key=change.lora.key,
            change=change.kind,
            reason=result.reason or None,
            kind=result.kind,
        )
        return result.outcome.value

    def queue_consumer(self) -> QueueConsumer | None:
        """The S3 events queue's consumer, when LORALEDGER_S3_EVENTS_QUEUE_URL is set."""
        queue_url = self.settings.s3_events_queue_url
        if queue_url is None:
            return None
        from loraledger.adapters.s3_events import QueueConsumer

        return QueueConsumer(self.clients.sqs, queue_url, self.take_s3_change, bucket=self.settings.s3_bucket)

    def import_path(
        self, path: Path, style_id: int | None, *, dry_run: bool = False, kind: SubjectKind = STYLE
    ) -> list[ImportOutcome]:
        """Import every legacy file under `path` (styles', or actors' by `kind`), several files
        per transaction (about IMPORT_BATCH_ENTRIES entries); a refused file is refused alone."""
        outcomes: list[ImportOutcome] = []
        projection = self._projection(kind)
        before = projection.head()
        batch: list[tuple[Path, LegacyPlan]] = []

        def record_batch() -> None:
            results = self.ledger.imports.import_plans([(p, str(f)) for f, p in batch], dry_run=dry_run)
            for (found, plan), result in zip(batch, results, strict=True):
                if isinstance(result, ImportReport):
                    outcomes.append(ImportOutcome(found, result, (), tuple(plan.problems)))
                    if not dry_run:
                        log_import_outcomes(result)
                else:
                    outcomes.append(ImportOutcome(found, None, (str(result),)))
            batch.clear()

        entries = 0
        for found in find_legacy_files(path, style_id, kind):
            read = read_legacy_file(found)
            if read.plan is None:
                record_batch()  # the outcomes stay in the files' order
                outcomes.append(ImportOutcome(found.path, None, read.errors))
                continue
            batch.append((found.path, read.plan))
            entries += sum(len(group.entries) for group in read.plan.groups)
            if entries >= IMPORT_BATCH_ENTRIES:
                record_batch()
                entries = 0
        record_batch()
        if not dry_run:
            touched = {o.report.style_id for o in outcomes if o.report and o.report.events}
            projection.after_command(touched, before)
        return outcomes

    def reconcile(self, older_than: timedelta) -> ReconcileReport:
        """Ask RunPod about versions pending longer than `older_than` and apply its answers."""
        self.settings.require_runpod("to ask RunPod about pending trainings (reconcile)")
        status = self.clients.runpod_status
        self.catch_up()
        pending: list[PendingVersion] = [
            (subject_id, name, kind)
            for kind in SUBJECT_KINDS
            for subject_id, name in self._projection(kind).pending_versions()
        ]
        grace = self.settings.effective_reconcile_after
        with timed_run("reconcile"):
            report = self.ledger.reconcile.run(pending, status, older_than=older_than, grace=grace)
        self.catch_up()
        for done in report.results:
            kind = ACTOR if "actor_id" in done else STYLE
            log_outcome(
                "reconcile",
                str(done["result"]),
                style_id=int(done[f"{kind}_id"]),
                version=str(done["version"]),
                job_id=done.get("job_id"),
                kind=kind,
            )
        return report

    # ------------------------------------------------------------------ reads

    def document(self, style_id: int, kind: SubjectKind = STYLE) -> str | None:
        """The subject's `training_versions.json` text; None when it has no version."""
        return self._projection(kind).document(style_id)

    def skipped_files(self, style_id: int | None = None) -> list[dict[str, Any]]:
        """Every S3 file a sync passed over, once per (key, ETag), oldest first (CONTRACT §12)."""
        return [skip.as_dict() for skip in self.ledger.queries.skipped_files(style_id)]

    def unmatched(self) -> list[dict[str, Any]]:
        """Webhooks parked for jobs the service does not know (CONTRACT §9), newest first."""
        return [
            {**item, "received_at": format_time(item["received_at"])}
            for item in self.ledger.queries.unmatched()
        ]

    def history(self, style_id: int, version_name: str, kind: SubjectKind = STYLE) -> dict[str, Any]:
        """The version's events and decisions, oldest first (CONTRACT §7, §8). UnknownVersion."""
        events = self.ledger.queries.history(style_id, version_name, kind)
        return history_json(style_id, version_name, events, kind)

    # ------------------------------------------------------------------ pages (they only read)

    def subjects(self) -> list[SubjectSummary]:
        """Every style with a version: its versions by status and its last event."""
        return self.projection.subject_summaries()

    def subject(self, style_id: int) -> SubjectSummary | None:
        return self.projection.subject_summary(style_id)

    def style_view(self, style_id: int, at: datetime | None = None) -> StyleView | None:
        """The style's entries now, or at `at` with what changed since; None: no version."""
        return style_view(self.ledger.queries, self.projection.document(style_id), style_id, at)

    def timeline(self, style_id: int, version_name: str) -> list[TimelineItem]:
        """The version's events, each with the entry after it. UnknownVersion."""
        return timeline(self.ledger.queries, style_id, version_name)

    def locate(self, text: str) -> Located | None:
        """The version a job id, model name, S3 key or LoRA URL names, if any."""
        return self.ledger.queries.locate(text)

    def parked_reports(self, text: str) -> int:
        """Reports of the job `text` names parked for want of its version (a search that missed)."""
        return self.ledger.queries.parked_reports(text)

    def live_stamp(self, style_id: int | None = None) -> str:
        """Changes with every new event (on that style, when given): open pages poll it."""
        if style_id is None:
            return str(self.projection.position())
        summary = self.projection.subject_summary(style_id)
        return "0" if summary is None else str(summary.events)

    # ------------------------------------------------------------------ health

    def healthy(self) -> bool:
        """One bounded probe of the store (the store's own calls retry for most of a minute)."""
        up = store_answers(self.settings.database_url, self.ledger.store)
        self._store_checked = (time.monotonic(), up)
        return up

    def operating_state(self, now: datetime) -> OperatingState:
        """What the state gauges of /metrics show, as of `now`."""
        summary = self.projection.status_summary()
        actors = self.actor_projection.status_summary()
        unwritten = self._oldest_unwritten()
        pending = [parse_time(text) for text in summary.pending_since + actors.pending_since]
        return OperatingState(
            versions={**summary.versions, **actors.versions},
            projection_lag_seconds=seconds_since(unwritten, now),
            pending_oldest_age_seconds=seconds_since(min(pending, default=None), now),
        )

    def readiness(self, now: datetime) -> str | None:
        """None when ready (the store answers and takes writes, the files are at most
        READY_LAG_SECONDS behind the log); else why not."""
        problem = self.health()
        if problem is not None:
            return problem
        lag = seconds_since(self._oldest_unwritten(), now)
        if lag > READY_LAG_SECONDS:
            return f"the files are {lag:.1f} s behind the event log (at most {READY_LAG_SECONDS:g} s)"
        return None

    def _oldest_unwritten(self) -> datetime | None:
        """When the oldest event some file (a style's or an actor's) does not hold yet was recorded."""
        moments = [p.oldest_unwritten() for p in (self.projection, self.actor_projection)]
        return min((moment for moment in moments if moment is not None), default=None)

    def health(self) -> str | None:
        """None when healthy; else why not: the store does not answer, or it answers reads but
        refused the last write (disk full, read-only) and no write has succeeded since."""
        if not self.healthy():
            return "the event store does not answer"
        refused = write_refusal(self.ledger.store.last_write_error)
        if refused is not None:
            return (
                f"the last write to the event store failed: {refused}; reads still work, "
                "and the next write that succeeds clears this"
            )
        return None

    def store_is_up(self) -> bool:
        """The last probe's answer if it is under a second old, else a new probe: requests refuse
        fast (503) while the store is away instead of waiting out its retries."""
        checked_at, up = self._store_checked
        if time.monotonic() - checked_at < STORE_CHECK_SECONDS:
            return up
        return self.healthy()
