"""The Ledger: every use case over one store, wired once (`Ledger.open`).

Adapters and the API call `ledger.start.request(...)`, `ledger.reports.apply(...)`, ... ; the
clock and the request-id factory are handed in here, so the domain never reads either itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from loraledger.application.annotate import AnnotateCommands
from loraledger.application.cancel import CancelCommands
from loraledger.application.context import LedgerConfig
from loraledger.application.file_edits import FileEditCommands
from loraledger.application.imports import ImportCommands
from loraledger.application.queries import Queries
from loraledger.application.reconcile import ReconcileCommands
from loraledger.application.reports import ReportCommands
from loraledger.application.s3_events import S3EventCommands
from loraledger.application.start import StartCommands
from loraledger.application.store import LedgerStore
from loraledger.application.sync import SyncCommands

__all__ = ["Ledger", "LedgerConfig", "LedgerStore", "new_request_id", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return uuid.uuid4().hex


class Ledger:
    """The use cases, sharing one store: `start`, `reports`, `sync`, `s3_events`, `imports`, `annotations`,
    `file_edits`, `reconcile`, `cancel` and `queries`."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        config: LedgerConfig,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        wiring = (store, config, clock, new_id)
        self.start = StartCommands(*wiring)
        self.reports = ReportCommands(*wiring)
        self.sync = SyncCommands(*wiring)
        self.s3_events = S3EventCommands(*wiring)
        self.imports = ImportCommands(*wiring)
        self.annotations = AnnotateCommands(*wiring)
        self.file_edits = FileEditCommands(*wiring)
        self.reconcile = ReconcileCommands(*wiring)
        self.cancel = CancelCommands(*wiring)
        self.queries = Queries(store)

    @classmethod
    def open(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        config: LedgerConfig = LedgerConfig(),
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_request_id,
        store_class: type[LedgerStore] = LedgerStore,
    ) -> Ledger:
        """The use cases over a store configured by `env` (eventsourcing's settings)."""
        store = store_class(env)
        return cls(store, config=config, clock=clock, new_id=new_id)

    def close(self) -> None:
        self.store.close()
