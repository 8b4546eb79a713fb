"""What the state gauges of /metrics and the readiness probe read: one value, taken at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OperatingState:
    """Versions by (subject kind, status); how far the files are behind the log; the oldest
    pending training's age (0 when none is pending)."""

    versions: dict[tuple[str, str], int]
    projection_lag_seconds: float
    pending_oldest_age_seconds: float


def seconds_since(moment: datetime | None, now: datetime) -> float:
    return 0.0 if moment is None else max(0.0, (now - moment).total_seconds())
