"""User-supplied JSON (legacy entries, parameters, RunPod input, extra fields) is stored in events as text.

The event store's JSON transcoder reads any object shaped `{"_type_": …, "_data_": …}` as one of
its own types; user data of that shape would make an aggregate unreadable. Text sidesteps that,
and keeps key order and number text exactly as received.
"""

from __future__ import annotations

import json
from typing import Any


class InvalidJson(ValueError):
    """User data that JSON cannot carry faithfully: NaN or infinite numbers, lone surrogates."""


MAX_DEPTH = 32  # a training's parameters are a few levels deep; hundreds only break readers


def check(value: Any, what: str, depth: int = 0) -> None:
    """Refuse, with a reason, what could not be stored and written back as JSON text."""
    if depth > MAX_DEPTH:
        raise InvalidJson(f"{what}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson(f"{what}: text with an unpaired surrogate (not valid Unicode)") from None
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidJson(f"{what}: {value} is not a JSON number")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidJson(f"{what}: key {key!r} is not text")
            check(key, what, depth + 1)
            check(item, f"{what}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check(item, f"{what}[{index}]", depth + 1)
    elif value is not None and not isinstance(value, bool | int):
        raise InvalidJson(f"{what}: {type(value).__name__} is not a JSON value")


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def load(text: str) -> Any:
    return json.loads(text)
