"""Byte-for-byte reproduction of JavaScript's ``JSON.stringify(value, null, 2)``.

The legacy UI wrote ``training_versions.json`` with ``JSON.stringify(data, null, 2)``; this module
writes the same text from the same data as Python's :func:`json.loads` returns it, so projections
stay diff-identical to files the old system produced.

Where JavaScript and Python data differ, the JavaScript view wins:

* Floats are written like ``Number.prototype.toString`` (``5.0`` -> ``5``, ``1e-05`` ->
  ``0.00001``, ``1e+16`` -> ``10000000000000000``); ``-0.0`` -> ``0``; NaN and infinities ->
  ``null``.
* Object members whose key is an array index (``"0"`` ... ``"4294967294"`` in canonical form) come
  first in ascending numeric order, as in every JavaScript object; other keys keep insertion order.
* Strings are treated as UTF-16: a high surrogate directly followed by a low surrogate is one
  character; any other surrogate is written as a lowercase ``\\udxxx`` escape (ES2019
  well-formed ``JSON.stringify``).

One deliberate exception: Python ints are written exactly, even beyond 2**53 where ``JSON.parse``
would have rounded them to a double.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from json.encoder import encode_basestring  # C implementation when available

__all__ = ["js_iso", "js_number", "js_quote", "js_stringify"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_ARRAY_INDEX = re.compile(r"(?:0|[1-9][0-9]{0,9})\Z")
_MAX_ARRAY_INDEX = 2**32 - 2


def js_quote(s: str) -> str:
    """Quote ``s`` exactly as JavaScript's ``JSON.stringify`` quotes a string."""
    if s.isascii() or _SURROGATE.search(s) is None:
        return encode_basestring(s)
    # Join valid surrogate pairs (JavaScript sees the same UTF-16 code units either way); any
    # surrogate left after that is lone and gets a lowercase \\udxxx escape.
    joined = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    out: list[str] = ['"']
    pos = 0
    for m in _SURROGATE.finditer(joined):
        out.append(encode_basestring(joined[pos : m.start()])[1:-1])
        out.append(f"\\u{ord(m.group()):04x}")
        pos = m.end()
    out.append(encode_basestring(joined[pos:])[1:-1])
    out.append('"')
    return "".join(out)


def js_number(x: float) -> str:
    """Format a float as ``JSON.stringify`` does: ``Number.prototype.toString`` for finite values
    (shortest round-trip digits, decimal notation for 1e-6 <= |x| < 1e21), ``null`` for NaN and
    infinities, ``0`` for ``-0.0``."""
    r = float.__repr__(x)
    if "e" not in r:
        if r.endswith(".0"):
            return "0" if x == 0 else r[:-2]
        if r[-1] in "nf":  # 'nan', 'inf', '-inf'
            return "null"
        return r
    return _js_exponent_form(r)


def _js_exponent_form(r: str) -> str:
    # r is Python's shortest round-trip repr in exponent form, e.g. '-1.2345e+22' or '1e-07'.
    sign = ""
    if r[0] == "-":
        sign = "-"
        r = r[1:]
    mantissa, _, exp_text = r.partition("e")
    digits = mantissa.replace(".", "")
    # Python's exponent-form mantissa always has exactly one nonzero digit before the point.
    k = len(digits)
    n = int(exp_text) + 1  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    exp = f"e+{e}" if e >= 0 else f"e{e}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX.match(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def js_stringify(value: object) -> str:
    """Return what ``JSON.stringify(value, null, 2)`` returns in JavaScript.

    ``value`` is JSON data as :func:`json.loads` produces it: dict (str keys), list, str, int,
    float, bool or None. Tuples are accepted as arrays. Anything else raises :class:`TypeError`;
    circular references raise :class:`ValueError`.
    """
    chunks: list[str] = []
    _Writer(chunks.append).write_value(value, 0)
    return "".join(chunks)


def js_stringify_at(value: object, level: int) -> str:
    """`js_stringify(value)` as it appears nested `level` deep in a larger document (its inner
    lines indented for that depth), so a document can be joined from parts written once."""
    chunks: list[str] = []
    _Writer(chunks.append).write_value(value, level)
    return "".join(chunks)


class _Writer:
    """Recursive writer. Scalars are handled inline in the container loops for speed."""

    __slots__ = ("active", "append", "indents", "index_keys", "keys")

    def __init__(self, append: Callable[[str], None]) -> None:
        self.append = append
        self.indents: list[str] = ["\n"]  # indents[level] == "\n" + "  " * level
        self.keys: dict[str, str] = {}  # key -> '"key": '
        self.index_keys: set[str] = set()  # keys seen so far that are array indices
        self.active: set[int] = set()  # ids of containers being written (cycle check)

    def write_other(self, v: object, level: int) -> None:
        """Subclasses of dict/list/tuple and scalars (slow path)."""
        if isinstance(v, dict):
            self.write_dict(v, level)
        elif isinstance(v, list | tuple):
            self.write_list(v, level)
        else:
            self.append(_scalar(v))

    def _indent(self, level: int) -> str:
        indents = self.indents
        while len(indents) <= level:
            indents.append(indents[-1] + "  ")
        return indents[level]

    def _enter(self, v: object) -> None:
        key = id(v)
        if key in self.active:
            raise ValueError("Circular reference detected")
        self.active.add(key)

    def write_value(self, v: object, level: int) -> None:
        """One member or element; exact-type checks first, as they are the common case."""
        t = type(v)
        if t is str:
            self.append(js_quote(v))  # type: ignore[arg-type]
        elif t is int:
            self.append(int.__repr__(v))
        elif t is bool:
            self.append("true" if v else "false")
        elif v is None:
            self.append("null")
        elif t is float:
            self.append(js_number(v))  # type: ignore[arg-type]
        elif t is dict:
            self.write_dict(v, level)  # type: ignore[arg-type]
        elif t is list or t is tuple:
            self.write_list(v, level)  # type: ignore[arg-type]
        else:
            self.write_other(v, level)

    def write_dict(self, d: dict[object, object], level: int) -> None:
        if not d:
            self.append("{}")
            return
        self._enter(d)
        append = self.append
        keys = self.keys
        inner = self._indent(level + 1)
        sep = "," + inner
        items = self._ordered_items(d)
        first = True
        for k, v in items:
            if first:
                append("{" + inner)
                first = False
            else:
                append(sep)
            append(keys[k])  # type: ignore[index]
            self.write_value(v, level + 1)
        append(self._indent(level) + "}")
        self.active.discard(id(d))

    def _ordered_items(self, d: dict[object, object]) -> Iterable[tuple[object, object]]:
        keys = self.keys
        index_keys = self.index_keys
        has_index = False
        for k in d:
            if k not in keys:
                if not isinstance(k, str):
                    raise TypeError(f"keys must be str, not {type(k).__name__}: {k!r}")
                keys[k] = js_quote(k) + ": "
                if _is_array_index(k):
                    index_keys.add(k)
                    has_index = True
            elif k in index_keys:
                has_index = True
        if not has_index:
            return d.items()
        items = list(d.items())
        index_items = sorted(
            (item for item in items if item[0] in index_keys),
            key=lambda item: int(item[0]),  # type: ignore[call-overload]
        )
        return index_items + [item for item in items if item[0] not in index_keys]

    def write_list(self, a: list[object] | tuple[object, ...], level: int) -> None:
        if not a:
            self.append("[]")
            return
        self._enter(a)
        append = self.append
        inner = self._indent(level + 1)
        sep = "," + inner
        first = True
        for v in a:
            if first:
                append("[" + inner)
                first = False
            else:
                append(sep)
            self.write_value(v, level + 1)
        append(self._indent(level) + "]")
        self.active.discard(id(a))


def _scalar(v: object) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        return js_number(v)
    if isinstance(v, str):
        return js_quote(str.__str__(v))
    raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")


def js_iso(dt: datetime) -> str:
    """Return ``Date.prototype.toISOString()`` for ``dt``: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC.

    Microseconds are floored to the millisecond, as ``new Date(ms)`` does. ``dt`` must be
    timezone-aware; a naive datetime raises :class:`ValueError`.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"js_iso needs a timezone-aware datetime, got naive {dt.isoformat()}")
    u = dt.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )
