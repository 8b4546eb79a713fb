"""User-supplied JSON (legacy entries, parameters, RunPod input, extra fields) is stored in events as text.

The event store's JSON transcoder reads any object shaped `{"_type_": …, "_data_": …}` as one of
its own types; user data of that shape would make an aggregate unreadable. Text sidesteps that,
and keeps key order and number text exactly as received.
"""

from __future__ import annotations

import json
from typing import Any


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def load(text: str) -> Any:
    return json.loads(text)
