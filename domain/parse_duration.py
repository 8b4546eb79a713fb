"""Durations as people type them on a command line: `15m`, `2h`, `90s`, `1d`, `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
LONGEST = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    cleaned = text.strip().lower()
    parts = _PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"duration {text!r} is not like 15m, 2h, 90s, 1d or 1h30m")
    try:
        total = sum((timedelta(**{_UNITS[unit]: int(number)}) for number, unit in parts), timedelta())
    except OverflowError:
        total = LONGEST + timedelta(days=1)
    if total > LONGEST:
        raise ValueError(f"duration {text!r} is longer than {LONGEST.days} days")
    return total
