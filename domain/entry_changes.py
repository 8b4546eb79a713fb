"""What changed between two states of an entry, or of a subject's file: pure comparisons for the pages.

A version's timeline shows, after each event, which of the entry's fields it set, changed or
removed; a subject's file at an earlier time shows which versions appeared, disappeared or
changed since. Values are compared as the file holds them (JSON values), never re-interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_ABSENT: Any = object()  # a field missing on one side (None is a value a field can hold)


class Change(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an entry: its value before (None when added) and after (None when removed)."""

    field: str
    change: Change
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True)
class VersionChange:
    """One version of a file between two moments, with the fields that changed."""

    name: str
    change: Change
    fields: tuple[FieldChange, ...] = ()


def entry_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[FieldChange]:
    """The fields that differ, in the order the later entry holds them (removed ones last)."""
    old, new = before or {}, after or {}
    changes: list[FieldChange] = []
    for name, value in new.items():
        previous = old.get(name, _ABSENT)
        if previous is _ABSENT:
            changes.append(FieldChange(name, Change.ADDED, after=value))
        elif not _same(previous, value):
            changes.append(FieldChange(name, Change.CHANGED, previous, value))
    changes.extend(
        FieldChange(name, Change.REMOVED, before=value) for name, value in old.items() if name not in new
    )
    return changes


def document_changes(
    then: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]]
) -> list[VersionChange]:
    """Versions (by `name`) added, changed or removed between two states of a file; newest first
    as `now` orders them, versions gone since after them."""
    earlier = {_name(entry): entry for entry in then}
    later = {_name(entry): entry for entry in now}
    changes: list[VersionChange] = []
    for name, entry in later.items():
        if name not in earlier:
            changes.append(VersionChange(name, Change.ADDED, tuple(entry_changes(None, entry))))
        elif fields := entry_changes(earlier[name], entry):
            changes.append(VersionChange(name, Change.CHANGED, tuple(fields)))
    changes.extend(
        VersionChange(name, Change.REMOVED, tuple(entry_changes(entry, None)))
        for name, entry in earlier.items()
        if name not in later
    )
    return changes


def _name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("name", ""))


def _same(left: Any, right: Any) -> bool:
    # JSON has no bool/int identity: True == 1 in Python, yet `true` and `1` differ in the file.
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)  # 1 and 1.0 are one JSON number, as the file writes them
