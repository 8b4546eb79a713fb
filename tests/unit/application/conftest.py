"""Each use-case test gets a ledger on an in-memory store and a clock it moves."""

from __future__ import annotations

import pytest

from loraledger.application.ledger import Ledger, LedgerConfig
from tests.unit.application.support import PLAIN, PREFIX, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock: Clock) -> Ledger:
    return Ledger.open(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        config=LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX),
        clock=clock,
    )
