"""The composition root: settings -> store -> ledger -> files -> projection writer -> clients -> facade.

Only this module builds the parts; the facade (api/facade.py) and the edges (api/http.py,
api/cli.py) use them. Nothing here imports FastAPI or uvicorn, so the CLI starts fast.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.adapters.file_edit_intake import FileEditIntake
from loraledger.adapters.files import FileSink, ProjectionFileWriter
from loraledger.adapters.metered_store import MeteredLedgerStore
from loraledger.adapters.metrics import count_s3_retries
from loraledger.adapters.redaction import register_secrets
from loraledger.adapters.s3_listing import make_s3_client
from loraledger.adapters.store import prepare_store, store_env, store_exists
from loraledger.api.facade import Service
from loraledger.api.settings import MissingSetting, Settings
from loraledger.application.ledger import Ledger, LedgerConfig, utc_now
from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind
from loraledger.projections.writer import ProjectionWriter, log_head

# Style files written at once by one write turn (their fsyncs overlap; each style has its own lock).
FILE_WRITE_THREADS = 8

if TYPE_CHECKING:  # imported when first used: a command that never asks RunPod never loads httpx
    from loraledger.adapters.runpod import RunPodClient
    from loraledger.adapters.runpod_status import RunPodStatusSource

__all__ = ["Clients", "ServeRefused", "check_serve_settings", "dry_run_overrides", "open_service"]


class ServeRefused(ValueError):
    """`serve` was asked for something the settings cannot give (several SQLite processes)."""


class Clients:
    """The outside services, each made at its first use (a command that needs none needs no setting)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def s3(self) -> Any:
        self.settings.require_bucket()
        client = make_s3_client(self.settings.s3_endpoint_url, max_attempts=self.settings.s3_max_attempts)
        count_s3_retries(client)
        return client

    @cached_property
    def runpod(self) -> RunPodClient:
        from loraledger.adapters.runpod import RunPodClient

        endpoint_id, api_key = self.settings.require_runpod()
        return RunPodClient(
            self.settings.runpod_base_url,
            endpoint_id,
            api_key,
            timeout=self.settings.runpod_timeout,
            attempts=self.settings.runpod_attempts,
        )

    @cached_property
    def runpod_status(self) -> RunPodStatusSource:
        """RunPod's `/status`, as reconcile asks it."""
        from loraledger.adapters.runpod_status import RunPodStatusSource

        return RunPodStatusSource(self.runpod)

    @cached_property
    def sqs(self) -> Any:
        """The S3 events queue's client (LORALEDGER_S3_EVENTS_QUEUE_URL)."""
        from loraledger.adapters.s3_events import make_sqs_client

        queue_url = self.settings.s3_events_queue_url
        if queue_url is None:
            raise MissingSetting("LORALEDGER_S3_EVENTS_QUEUE_URL", "to take S3 events from a queue")
        return make_sqs_client(queue_url)

    def close(self) -> None:
        if "runpod" in self.__dict__:
            self.runpod.close()


def open_service(
    settings: Settings, *, clock: Callable[[], datetime] | None = None, create_store: bool = True
) -> Service:
    """The service for these settings; `create_store=False` uses only a store that exists."""
    register_secrets(*settings.secret_values())  # hidden from every answer, file and log from now on
    config = LedgerConfig(
        lora_url_base=settings.effective_lora_url_base,
        s3_prefix=settings.s3_prefix,
        s3_actor_prefix=settings.s3_actor_prefix,
    )
    if create_store:
        prepare_store(settings.database_url)
    env = store_env(settings.database_url, create=create_store)
    ledger = Ledger.open(env, config=config, clock=clock or utc_now, store_class=MeteredLedgerStore)
    try:
        state_dir = settings.effective_state_dir or Path(tempfile.mkdtemp(prefix="loraledger-state-"))
        files = _file_writer(settings, ledger, state_dir, STYLE)
        # The actors' records are kept apart: their files share the output folder, not its mark.
        actor_files = _file_writer(settings, ledger, state_dir / "actors", ACTOR)
    except BaseException:
        ledger.close()
        raise
    projection, actor_projection = (
        ProjectionWriter(
            ledger.store,
            FileSink(writer),
            writer,
            partial(ledger.queries.style_versions, kind=kind),
            edits=FileSink(writer),
            write_threads=FILE_WRITE_THREADS,
            kind=kind,
        )
        for writer, kind in ((files, STYLE), (actor_files, ACTOR))
    )
    return Service(settings, ledger, projection, files, Clients(settings), actor_projection, actor_files)


def open_serving_service(settings: Settings) -> Service:
    """The service of one `serve` process. On PostgreSQL whose tables exist (`serve` makes them once
    before its workers start), nothing is created again: workers running eventsourcing's table
    statements at the same moment race in PostgreSQL's catalogue ("tuple concurrently updated")."""
    on_postgres = settings.database_url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:"))
    return open_service(settings, create_store=not (on_postgres and store_exists(settings.database_url)))


def _file_writer(
    settings: Settings, ledger: Ledger, state_dir: Path, kind: SubjectKind
) -> ProjectionFileWriter:
    """The files of one subject kind: its layout, its records in the state folder, its edits taken in."""
    return ProjectionFileWriter(
        Path(settings.output_dir),
        settings.actor_output_layout if kind == ACTOR else settings.output_layout,
        state_dir=state_dir,
        log_head=partial(log_head, ledger.store),
        intake=FileEditIntake(ledger.file_edits, kind),
        fallback=settings.output_fallback if kind == STYLE else None,
        kind=kind,
    )


def check_serve_settings(settings: Settings, workers: int) -> None:
    """What `serve` checks and prepares before it starts uvicorn: the layout, the worker count, the
    store (and its tables, once, for several workers)."""
    ProjectionFileWriter(Path(settings.output_dir), settings.output_layout)  # a bad layout stops here
    ProjectionFileWriter(Path(settings.output_dir), settings.actor_output_layout, kind=ACTOR)
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise ServeRefused(
            "several workers need LORALEDGER_DATABASE_URL=postgresql://…; SQLite is one process"
        )
    prepare_store(settings.database_url)  # a bad URL, or a database that refuses us, stops here
    if workers > 1:
        # The tables are created here, once: worker processes creating them at the same moment
        # race in PostgreSQL's catalogue (a duplicate key in pg_type) and one of them dies.
        open_service(settings).close()


def dry_run_overrides(settings: Settings) -> dict[str, Any]:
    """A dry run reads the existing store when there is one, and never creates one."""
    if store_exists(settings.database_url):
        return {}
    return {"database_url": "memory://"}
