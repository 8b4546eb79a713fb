"""The composition root: settings -> the ledger, its store, the file projection and the clients.

The CLI and the HTTP routes both call these methods, so a command means the same thing from
either edge: run one adapter flow or ledger command, then bring the files up to date before
answering (a 2xx answer is already on disk).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from loraledger.adapters.files import ProjectionFileWriter
from loraledger.adapters.legacy_files import find_legacy_files, read_legacy_file
from loraledger.adapters.redaction import register_secrets
from loraledger.adapters.runpod import RunPodClient
from loraledger.adapters.runpod_payloads import JobPayload, report_from_payload
from loraledger.adapters.runpod_status import RunPodStatusSource
from loraledger.adapters.s3_listing import make_s3_client
from loraledger.adapters.s3_sync import sync_bucket
from loraledger.adapters.store import prepare_store, store_answers, store_env, write_refusal
from loraledger.adapters.training_start import StartedTraining, start_training
from loraledger.api.settings import MissingSetting, Settings
from loraledger.application.imports import ImportReport
from loraledger.application.ledger import Ledger, LedgerConfig
from loraledger.application.reconcile import ReconcileReport
from loraledger.application.reports import ReportResult
from loraledger.application.sync import SyncReport
from loraledger.domain.entries import Status
from loraledger.domain.errors import LedgerError
from loraledger.domain.training_version import TrainingVersion
from loraledger.projections.runner import CatchUp, ProjectionRunner, log_identity, replay
from loraledger.projections.training_versions import render_document

log = logging.getLogger(__name__)
WRITER_INTERVAL_SECONDS = 1.0
WRITER_COALESCE_SECONDS = 0.1
STORE_CHECK_SECONDS = 1.0


class FileSink:
    """The projection's sink: the atomic writer for one output folder and layout."""

    def __init__(self, writer: ProjectionFileWriter) -> None:
        self.writer = writer

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        return self.writer.write(style_id, text, position).backup


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


class Service:
    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime] | None = None, create_store: bool = True
    ) -> None:
        self.settings = settings
        register_secrets(*settings.secret_values())  # hidden from every answer, file and log from now on
        config = LedgerConfig(lora_url_base=settings.effective_lora_url_base, s3_prefix=settings.s3_prefix)
        if create_store:
            prepare_store(settings.database_url)
        env = store_env(settings.database_url, create=create_store)
        self.ledger = (
            Ledger.open(env, config=config) if clock is None else Ledger.open(env, config=config, clock=clock)
        )
        self.writer = ProjectionFileWriter(
            Path(settings.output_dir), settings.output_layout, log_head=self._head
        )
        self.runner = ProjectionRunner(self.ledger.store, FileSink(self.writer))
        self._backups: list[Path] = []
        self._backups_lock = threading.Lock()
        self._store_checked = (float("-inf"), True)
        self._wake: threading.Event | None = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def close(self) -> None:
        self._stop.set()
        if self._wake is not None and self._writer is not None:
            self._wake.set()
            self._writer.join(timeout=10)
        if "runpod" in self.__dict__:
            self.runpod.close()
        self.ledger.close()

    # ------------------------------------------------------------------ clients

    @cached_property
    def s3(self) -> Any:
        self.settings.require_bucket()
        return make_s3_client(self.settings.s3_endpoint_url, max_attempts=self.settings.s3_max_attempts)

    @cached_property
    def runpod(self) -> RunPodClient:
        endpoint_id, api_key = self.settings.require_runpod()
        return RunPodClient(
            self.settings.runpod_base_url,
            endpoint_id,
            api_key,
            timeout=self.settings.runpod_timeout,
            attempts=self.settings.runpod_attempts,
        )

    # ------------------------------------------------------------------ commands

    def catch_up(self) -> CatchUp:
        """Bring the files up to date; a file someone else had changed is kept and reported."""
        result = self.runner.catch_up()
        self._report_backups(result.backups)
        self._mark_files(f"{log_identity(self.ledger.store)}:{result.position}" if result.complete else None)
        return result

    def _mark_files(self, position: str | None) -> None:
        """Record that every file is current through `position`, or (None) that some file is not,
        so that the next one-shot command catches up on every style instead of only its own."""
        try:
            if position is None:
                self.writer.clear_mark()
            else:
                self.writer.write_mark(position)
        except OSError as error:  # the output folder itself is not writable: the styles said so
            log.warning("the output folder's mark %s cannot be updated: %s", self.writer.mark_path, error)

    def _head(self) -> str:
        """Where the log ends now (the form the files' marks use)."""
        store = self.ledger.store
        return f"{log_identity(store)}:{store.recorder.max_notification_id() or 0}"

    def _report_backups(self, backups: list[Path]) -> None:
        for backup in backups:
            log.warning(
                "%s had been changed by someone else; kept a copy at %s",
                backup.parent,
                backup,
                extra={"backup": str(backup)},
            )
        with self._backups_lock:
            self._backups.extend(backups)

    def start_writer(self) -> None:
        """Server mode: files are written by one background thread, woken by each command and
        every second (for events other processes recorded), so a burst of webhooks costs one
        write per style instead of one per request. Reads fold the log first, so they are
        current at once; the files follow within the writer's next turn."""
        self._wake = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="projection-writer", daemon=True)
        self._writer.start()

    def _write_loop(self) -> None:
        assert self._wake is not None
        while not self._stop.is_set():
            self._wake.wait(WRITER_INTERVAL_SECONDS)
            # Let a burst of commands land first: one write then covers them all (the contract
            # gives the file 2 s; reads never wait for it).
            self._stop.wait(WRITER_COALESCE_SECONDS)
            self._wake.clear()
            try:
                self.catch_up()
            except Exception:  # the store may be away for a while: /healthz says so; we go on
                log.warning("writing the projection files failed; retrying", exc_info=True)

    def _changed(self) -> None:
        """After a command: write now (CLI), or wake the writer (server)."""
        if self._wake is None:
            self.catch_up()
        else:
            self._wake.set()

    def _write_styles(self, styles: Iterable[int], before: str) -> None:
        """After a command that touched these styles: write their files.

        A server's runner already follows the log, so it is only woken. A one-shot command renders
        the touched styles from their aggregates instead of folding the whole log, when the files
        were current (their mark) as the command began; otherwise (a run killed before it wrote,
        events from elsewhere) it catches up on the whole log.
        """
        if self._wake is not None:
            self._wake.set()
            return
        if self.writer.read_mark() != before:
            self.catch_up()
            return
        touched = sorted(styles)
        if not touched:
            return
        position = self._head()
        backups, failed = [], False
        for style_id in touched:
            try:
                result = self.writer.write(
                    style_id, render_document(self.ledger.queries.style_versions(style_id)), position
                )
            except (OSError, ValueError) as error:  # a read-only folder, a full disk, a link
                log.error("style %s: its file cannot be written: %s", style_id, error)
                failed = True
                continue
            if result.backup is not None:
                backups.append(result.backup)
        self._report_backups(backups)
        self._mark_files(None if failed else position)

    def take_backups(self) -> list[Path]:
        """Backups kept since the last call (for the command's answer)."""
        with self._backups_lock:
            taken, self._backups = self._backups, []
        return taken

    def sync(
        self, only_style: int | None = None, on_listed: Callable[[int], None] | None = None
    ) -> SyncReport:
        bucket = self.settings.require_bucket()
        before = self._head()
        url_base = self.settings.effective_lora_url_base
        assert url_base is not None  # derived from the bucket when not set
        report = sync_bucket(
            self.ledger.sync,
            self.s3,
            bucket=bucket,
            prefix=self.settings.s3_prefix,
            url_base=url_base,
            only_style=only_style,
            on_listed=on_listed,
        )
        self._write_styles(report.styles, before)
        return report

    def start(
        self,
        style_id: int,
        version_name: str | None,
        *,
        parameters: dict[str, Any],
        description: str | None,
        extra_input: dict[str, Any],
        fields: dict[str, Any],
    ) -> StartedTraining:
        webhook_url = self.settings.webhook_url()
        runpod = self.runpod
        try:
            return start_training(
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
            )
        finally:
            self._changed()

    def receive_job_payload(self, payload: JobPayload) -> ReportResult:
        result = self.ledger.reports.apply(report_from_payload(payload), source="webhook")
        self._changed()
        return result

    def annotate(
        self, style_id: int, version_name: str, set_fields: dict[str, Any], cleared: list[str]
    ) -> TrainingVersion:
        version = self.ledger.annotations.annotate(style_id, version_name, set_fields, cleared)
        self._changed()
        return version

    def import_path(self, path: Path, style_id: int | None, *, dry_run: bool = False) -> list[ImportOutcome]:
        outcomes = []
        before = self._head()
        for found in find_legacy_files(path, style_id):
            read = read_legacy_file(found)
            if read.plan is None:
                outcomes.append(ImportOutcome(found.path, None, read.errors))
                continue
            try:
                report = self.ledger.imports.import_plan(read.plan, str(found.path), dry_run=dry_run)
            except (LedgerError, ValueError) as refused:  # e.g. a job id that is another version's
                outcomes.append(ImportOutcome(found.path, None, (str(refused),)))
                continue
            outcomes.append(ImportOutcome(found.path, report, (), tuple(read.plan.problems)))
        if not dry_run:
            self._write_styles({o.report.style_id for o in outcomes if o.report and o.report.events}, before)
        return outcomes

    def rebuild(self) -> CatchUp:
        """Every style's file regenerated from the whole history (`failed`: styles not writable)."""
        self.runner = ProjectionRunner(self.ledger.store, FileSink(self.writer))
        return self.catch_up()

    def replay(self, until: datetime, out_dir: Path) -> list[int]:
        check_replay_target(Path(self.settings.output_dir), out_dir)
        writer = ProjectionFileWriter(out_dir, self.settings.output_layout)
        return replay(self.ledger.store, until, FileSink(writer))

    def reconcile(self, older_than: timedelta) -> ReconcileReport:
        self.settings.require_runpod("to ask RunPod about pending trainings (reconcile)")
        status = RunPodStatusSource(self.runpod)
        self.catch_up()
        pending = [
            (version.style_id, version.version_name)
            for style_id in self.runner.documents.styles()
            for version in self.runner.documents.versions(style_id)
            if version.status == Status.PENDING
        ]
        grace = self.settings.effective_reconcile_after
        report = self.ledger.reconcile.run(pending, status, older_than=older_than, grace=grace)
        self.catch_up()
        return report

    def healthy(self) -> bool:
        """One bounded probe of the store (the store's own calls retry for most of a minute)."""
        up = store_answers(self.settings.database_url, self.ledger.store)
        self._store_checked = (time.monotonic(), up)
        return up

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


__all__ = ["MissingSetting", "ReplayTargetRefused", "Service", "check_replay_target"]
