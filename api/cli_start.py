"""What the CLI makes at start without importing the libraries behind it (see api/cli.py)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from loraledger.domain.errors import LedgerError
from loraledger.domain.naming import NameRejected

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A rich Console made at its first use (rich is imported by the commands that print)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


@cache
def explained_errors() -> tuple[type[BaseException], ...]:
    """Failures a command explains in one line (exit 1) instead of a traceback."""
    from loraledger.adapters.runpod import RunPodError
    from loraledger.adapters.s3_listing import S3ListingError
    from loraledger.adapters.store import StoreConfigError
    from loraledger.api.settings import MissingSetting
    from loraledger.domain.legacy import LegacyDocumentError

    return (
        MissingSetting,
        LedgerError,
        S3ListingError,
        RunPodError,
        StoreConfigError,
        NameRejected,
        LegacyDocumentError,
        FileNotFoundError,
        ValueError,
    )
