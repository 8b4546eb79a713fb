"""Time as the JSON files write it: JavaScript's `Date.prototype.toISOString()`."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    """`2025-10-13T19:36:17.724Z`: UTC, milliseconds (floored, as JS keeps only milliseconds)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no known zone; give times in UTC")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """ISO-8601 with `Z` or an offset; no zone means UTC (the command line's rule)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
