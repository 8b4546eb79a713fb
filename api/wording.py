"""How counts read in the commands' lines: `1 event`, `2 events`, `1 style`."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """`count` and the noun, in the plural unless the count is one (`1 file`, `0 files`)."""
    return f"{count} {noun if count == 1 else noun + 's'}"
