"""What leaves the process: secrets redacted, control characters made visible.

One redaction for every outward text (HTTP answers, recorded error texts, files, logs, command
output). A secret is found in any spelling an echo may give it: as is, percent-encoded (any hex
case, or twice as `%25XX`), JSON-escaped (`\\/`, `\\uXXXX`, nested escapes), as an HTML
character reference, or any mix of these per character. Besides the known secrets, the value of
any `token` query parameter (whatever the spelling of its name) is redacted, so a wrong token or a
secret that was changed since does not show either.

The registry of secrets is process-wide, as logging is: `register_secrets()` adds the values of
the settings in use, and `redact()` hides all of them.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "MASK",
    "RedactingLogFilter",
    "Redactor",
    "escape_controls",
    "install_log_redaction",
    "json_for_terminal",
    "mask_credential_shapes",
    "redact",
    "register_secrets",
]

MASK: Final = "***"
_BACKSLASHES: Final = r"\\+"  # one or more: a JSON text quoted inside another JSON text doubles them
_PERCENT: Final = "%(?:25)*"  # `%41`, or `%2541` once more URL-encoded
_HTML_NAMED: Final = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}


def _hex(number: int, width: int = 0) -> str:
    """A regex for `number` in hex, either case (`2f` / `2F`), zero-padded to `width`."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{width}x}")


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return _BACKSLASHES + "u" + _hex(code, 4)
    high, low = divmod(code - 0x10000, 0x400)
    return _BACKSLASHES + "u" + _hex(0xD800 + high, 4) + _BACKSLASHES + "u" + _hex(0xDC00 + low, 4)


def _char_spellings(char: str, *, any_case: bool = False) -> str:
    """A regex matching one character in every spelling an echo of it may use."""
    variants = {char.lower(), char.upper()} if any_case else {char}
    alternatives: list[str] = []
    for variant in sorted(variants):
        code = ord(variant)
        alternatives.append(re.escape(variant))
        if variant in '"\\/':
            alternatives.append(_BACKSLASHES + re.escape(variant))
        alternatives.append(_json_escape(variant))
        alternatives.append("".join(_PERCENT + _hex(byte, 2) for byte in variant.encode("utf-8", "replace")))
        alternatives.append(f"&#0*{code};")
        alternatives.append(f"&#[xX]0*{_hex(code)};")
        if variant in _HTML_NAMED:
            alternatives.append(f"&{_HTML_NAMED[variant]};")
        if variant == " ":
            alternatives.append(r"\+")
    return "(?:" + "|".join(alternatives) + ")"


def _spellings(text: str, *, any_case: bool = False) -> str:
    return "".join(_char_spellings(char, any_case=any_case) for char in text)


# `token=<value>` as a query parameter, the name in any spelling (`tok%65n`, `\u0074oken`, `TOKEN`),
# after `?`, `&`, `;` (or their encoded forms) or any other non-word character.
_TOKEN_PARAMETER: Final = re.compile(
    r"(?P<lead>^|[^A-Za-z0-9_%]|"
    + _PERCENT
    + r"(?:26|3[bBfF])|"
    + _BACKSLASHES
    + r"u00(?:26|3[bBfF]))"
    + "(?P<name>"
    + _spellings("token", any_case=True)
    + ")"
    + "(?P<eq>"
    + _char_spellings("=")
    + ")"
    # Up to the next separator or quote, or a backslash (a JSON escape such as `\u0026`). Not up to
    # `%26`: in our own URL that is an `&` inside the secret (in a URL-encoded URL, more goes).
    + r"(?P<value>[^\s&;#\"'<>\\,)\]}]*)"
)


class Redactor:
    """Hides the given secrets, and every `token` query value, in any spelling."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = frozenset(secret for secret in secrets if secret)
        # Longest first, so a secret that contains another is hidden whole.
        ordered = sorted(self.secrets, key=lambda secret: (-len(secret), secret))
        self._pattern = re.compile("|".join(_spellings(secret) for secret in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _TOKEN_PARAMETER.sub(_mask_token_value, text)

    def __repr__(self) -> str:
        return f"Redactor({len(self.secrets)} secrets)"  # never the values


def _mask_token_value(match: re.Match[str]) -> str:
    if not match["value"]:
        return match[0]
    return f"{match['lead']}{match['name']}{match['eq']}{MASK}"


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.redactor = Redactor()

    def add(self, values: Iterable[str | None]) -> None:
        with self._lock:
            wanted = self.redactor.secrets | {value for value in values if value}
            if wanted != self.redactor.secrets:
                self.redactor = Redactor(wanted)  # swapped whole: readers never see half of it


_registry = _Registry()


def register_secrets(*values: str | None) -> None:
    """Add secrets to hide from every outward text of this process (None and "" are ignored)."""
    _registry.add(values)


def redact(text: str) -> str:
    """`text` with every registered secret, and every `token` query value, replaced by `***`."""
    return _registry.redactor(text)


# Credentials we are not told about (the AWS keys are botocore's): anything shaped like one. AWS
# access key ids, 40-character secret-key-shaped tokens, and `user:password@` in URLs.
_ACCESS_KEY_ID: Final = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")
_SECRET_LIKE: Final = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_URL_USERINFO: Final = re.compile(r"(?<=://)[^/@\s]+@")


def mask_credential_shapes(text: str) -> str:
    """Mask anything credential-shaped (for text from S3 or botocore)."""
    text = _URL_USERINFO.sub(MASK + "@", text)
    text = _ACCESS_KEY_ID.sub(MASK, text)
    return _SECRET_LIKE.sub(_mask_secret_like, text)


def _mask_secret_like(match: re.Match[str]) -> str:
    token = match.group(0)
    # Secret keys mix cases; bucket names, hex digests and request ids do not.
    if any(c.isupper() for c in token) and any(c.islower() for c in token):
        return MASK
    return token


# --------------------------------------------------------------------------- terminals

# Control (Cc), format (Cf: bidi overrides, zero-width), line/paragraph separators and lone
# surrogates: a terminal would act on them (clear the screen, reorder text) instead of showing them.
_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escaped(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: str, *, keep: str = "") -> str:
    """`text` for a terminal: every control or format character written as a visible escape
    (`\\x1b`, `\\n`, `\\u202e`), except those in `keep`."""
    if text.isprintable():  # no Cc, Cf, Cs, Zl or Zp in it
        return text
    return "".join(_escaped(char) if _unsafe(char) and char not in keep else char for char in text)


def json_for_terminal(text: str) -> str:
    """JSON text with the control and format characters JSON leaves raw (DEL, C1, bidi) written as
    `\\uXXXX`: the same data, but a terminal shows them instead of acting on them."""
    parts = []
    for char in text:
        # JSON escapes the C0 characters in strings itself: a raw one is the layout's line break.
        if _unsafe(char) and char >= " ":
            parts.append(json.dumps(char)[1:-1] if ord(char) < 0x10000 else _json_pair(char))
        else:
            parts.append(char)
    return "".join(parts)


def _json_pair(char: str) -> str:
    high, low = divmod(ord(char) - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


# --------------------------------------------------------------------------- logs

_ACCESS_LOGGER: Final = "uvicorn.access"


def _clean(text: str) -> str:
    return escape_controls(redact(text))


def _clean_arg(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if value is None or isinstance(value, int | float):
        return value  # keeps `%d` and `%.2f` working
    text = str(value)
    cleaned = _clean(text)
    return value if cleaned == text else cleaned


_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class RedactingLogFilter(logging.Filter):
    """On a handler: the record's arguments, message and traceback redacted, and the arguments'
    control characters escaped (they come from outside; the format string is ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_clean_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _clean_arg(arg) for key, arg in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        # uvicorn's access formatter unpacks the arguments: they must stay as they are.
        if record.name != _ACCESS_LOGGER:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string is logging's own error to report
                message = None
            if message is not None and redact(message) != message:  # a secret across arguments
                record.msg, record.args = redact(message), ()
                record.__dict__.pop("color_message", None)  # uvicorn would format it with the args
        for name, value in list(vars(record).items()):  # `extra=` fields, as JSON logs print them
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, escape_controls(redact(value)))
        if record.exc_info and not record.exc_text:
            record.exc_text = escape_controls(
                redact(logging.Formatter().formatException(record.exc_info)), keep="\n"
            )
        return True


_FILTER: Final = RedactingLogFilter()


_SERVER_LOGGERS: Final = ("", "uvicorn", "uvicorn.error", _ACCESS_LOGGER)


def install_log_redaction(logger_names: Iterable[str] = _SERVER_LOGGERS) -> None:
    """Put the filter on every handler of these loggers and on logging's last resort (where records
    go when no handler is configured). Idempotent."""
    handlers: list[logging.Handler] = []
    for name in logger_names:
        handlers.extend(logging.getLogger(name).handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
