"""User JSON: the one check every way in goes through, and how it is stored in events and read back.

Every way user JSON enters (PATCH, a training's parameters, fields and input, the webhook summary,
legacy files) passes `check` (or `check_fields` for an entry's fields) before anything is recorded:
what it refuses is what JSON text cannot carry, or what breaks the JavaScript that reads the
`training_versions.json` files (keys that shadow Object members, nesting hundreds deep, a
description that is not text).

Values are stored in events as text: the event store's JSON transcoder reads any object shaped
`{"_type_": …, "_data_": …}` as one of its own types, so user data of that shape would make an
aggregate unreadable; text sidesteps that, and keeps key order and number text exactly as received.
`load` reads stored text back without ever recursing deeper than STORED_MAX_DEPTH levels, so a
value that older code recorded without the check cannot stop a rebuild or a server start.
"""

from __future__ import annotations

import json
import re
from typing import Any


class InvalidJson(ValueError):
    """User data refused with the reason: JSON text cannot carry it, or a reader would break on it."""


MAX_DEPTH = 32  # a training's parameters are a few levels deep; hundreds only break readers
MAX_BYTES = 1_000_000  # one value as JSON text (an entry, a PATCH body): far above any real one
STORED_MAX_DEPTH = 64  # reading back: deeper levels (only older code stored them) stay JSON text

# What a JavaScript reader finds on every object through Object.prototype. As keys in the file they
# replace it: `Object.assign` or a deep merge sets the prototype (`__proto__`), and code that calls
# `entry.toString()` or `obj.hasOwnProperty(k)` gets a value instead of a function.
OBJECT_MEMBER_KEYS = frozenset(
    {
        "__proto__",
        "constructor",
        "prototype",
        "toString",
        "toLocaleString",
        "valueOf",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
    }
)


def check(value: Any, what: str) -> None:
    """Refuse, with a reason naming where, what could not be stored and written back as JSON text
    that every reader of the files can take."""
    _check(value, what, 0)
    size = len(dump(value).encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise InvalidJson(f"{what}: {size} bytes as JSON, larger than {MAX_BYTES} bytes")


def check_fields(fields: dict[str, Any], what: str) -> None:
    """`check` for fields of an entry: a `description` is text too (readers call string methods on it)."""
    check(fields, what)
    if "description" in fields and not isinstance(fields["description"], str):
        found = type(fields["description"]).__name__ if fields["description"] is not None else "null"
        raise InvalidJson(f"{what}.description: must be text, not {found}")


def _check(value: Any, what: str, depth: int) -> None:
    # Recursion stops at MAX_DEPTH: a value nested thousands deep is refused, never a RecursionError.
    if depth > MAX_DEPTH:
        where = what if len(what) <= 80 else what[:60] + "…"  # `…[0][0][0]` tells nothing more
        raise InvalidJson(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value, what)
    elif isinstance(value, float):
        if value != value:
            raise InvalidJson(f"{what}: NaN is not a JSON number")
        if value in (float("inf"), float("-inf")):
            raise InvalidJson(f"{what}: a number too large for JSON (read as {value})")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidJson(f"{what}: key {key!r} is not text")
            _check_text(key, what)
            if key in OBJECT_MEMBER_KEYS:
                raise InvalidJson(
                    f"{what}: key {key!r} is refused: a JavaScript reader would take it for a member "
                    "every object has"
                )
            _check(item, f"{what}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{what}[{index}]", depth + 1)
    elif value is not None and not isinstance(value, bool | int):
        raise InvalidJson(f"{what}: {type(value).__name__} is not a JSON value")


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson(f"{what}: text with an unpaired surrogate (not valid Unicode)") from None


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def parse(text: str | bytes) -> Any:
    """User JSON text -> a value to `check`. ValueError when it is not JSON, or nests deeper than the
    reader can go (thousands of levels)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels (too deep to read at all)") from None


# A JSON string (escapes included), or a bracket: what decides nesting in JSON text.
_NESTING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def too_deep(text: str) -> bool:
    """Whether `load` keeps part of this stored text as JSON text (it nests deeper than allowed)."""
    return _cut_deep_parts(text) is not None


def load(text: str) -> Any:
    """A value stored by `dump`. Parts nested deeper than STORED_MAX_DEPTH (only older code stored
    them) are kept as their JSON text, in place: nothing is lost, and no reader has to recurse."""
    cut = _cut_deep_parts(text)
    return json.loads(text if cut is None else cut)


def _cut_deep_parts(text: str) -> str | None:
    """The text with each container opened below STORED_MAX_DEPTH replaced by a JSON string of its
    own text; None when nothing is that deep. Iterative: any depth is fine."""
    if text.count("[") + text.count("{") <= STORED_MAX_DEPTH:
        return None  # the common case, decided without a scan
    parts: list[str] = []
    depth, done, start = 0, 0, -1
    for token in _NESTING_TOKEN.finditer(text):
        bracket = token.group()
        if bracket[0] == '"':
            continue
        if bracket in "[{":
            if depth == STORED_MAX_DEPTH and start < 0:
                start = token.start()
            depth += 1
        else:
            depth -= 1
            if depth == STORED_MAX_DEPTH and start >= 0:
                parts.append(text[done:start])
                parts.append(json.dumps(text[start : token.end()], ensure_ascii=False))
                done, start = token.end(), -1
    if not parts:
        return None
    parts.append(text[done:])
    return "".join(parts)
