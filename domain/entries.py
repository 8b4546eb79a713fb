"""The shape of one `training_versions.json` entry: which fields the service owns, and their order."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal

from loraledger.domain.errors import OwnedFieldError


class Status(StrEnum):
    """An entry's `status`; the values are the file's text."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


STATUSES = tuple(status.value for status in Status)
STATUS_OF_TEXT: dict[object, Status] = {status.value: status for status in Status}

# The order of CONTRACT §2's example; fields it does not show follow in this order.
CANONICAL_ORDER = (
    "id",
    "name",
    "description",
    "timestamp",
    "parameters",
    "status",
    "loraUrl",
    "completedAt",
    "error",
    "failedAt",
    "lastSynced",
)

# Fields whose value the service derives from events; users set the others (PATCH, import).
OWNED_FIELDS = frozenset(
    {
        "id",
        "name",
        "timestamp",
        "parameters",
        "status",
        "loraUrl",
        "completedAt",
        "failedAt",
        "error",
        "lastSynced",
    }
)

SYNCED_FROM_S3 = "Synced from S3"


def check_settable(names: Iterable[str], verb: Literal["set", "changed"]) -> None:
    """The one owned-field rule: users (start's extra fields, PATCH) never set what events derive."""
    owned = sorted(OWNED_FIELDS.intersection(names))
    if owned:
        raise OwnedFieldError(f"fields owned by the service cannot be {verb}: {', '.join(owned)}")


def ordered(entry: dict[str, Any], *, canonical: bool) -> dict[str, Any]:
    """The entry in the order the file shows it.

    A new entry uses the contract's order with other fields after (in the order they were set);
    an imported entry keeps its own order, with fields added later appended, as the JavaScript
    that wrote the legacy files would have done.
    """
    if not canonical:
        return entry
    known = {key: entry[key] for key in CANONICAL_ORDER if key in entry}
    known.update((key, value) for key, value in entry.items() if key not in known)
    return known
