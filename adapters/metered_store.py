"""The ledger's store, counting each event it writes by type (`loraledger_events_appended_total`)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from loraledger.adapters.metrics import record_events
from loraledger.application.store import LedgerStore


class MeteredLedgerStore(LedgerStore):
    # eventsourcing names a subclass's tables after the subclass unless told: the same store's.
    name = LedgerStore.name

    def save_all(self, *aggregates: Aggregate | None) -> int:
        # The names are taken first: a successful save empties the aggregates' pending events.
        names = [type(event).__name__ for a in aggregates if a is not None for event in a.pending_events]
        count = super().save_all(*aggregates)
        if count:
            record_events(names)
        return count
