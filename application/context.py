"""What every use case is handed: the store, the settings the rules need, a clock and an id factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loraledger.application.store import LedgerStore


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Values the rules need from settings: where LoRA files are, and their public URL base.

    `s3_actor_prefix` is where actors' LoRA files are; None when actors are not synced.
    """

    lora_url_base: str | None = None
    s3_prefix: str = ""
    s3_actor_prefix: str | None = None


class UseCase:
    """One use case's commands over the shared store."""

    def __init__(
        self,
        store: LedgerStore,
        config: LedgerConfig,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.new_id = new_id
