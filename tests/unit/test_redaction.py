"""The one redaction of outward text: every spelling of a secret and of a `token` query value, and
control characters made visible for terminals."""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from urllib.parse import quote, quote_plus

import pytest

from loraledger.adapters.redaction import (
    MASK,
    RedactingLogFilter,
    Redactor,
    escape_controls,
    json_for_terminal,
    mask_credential_shapes,
    redact,
    register_secrets,
)

# `/`, `+`, a space, `&`, `=`, a non-ASCII letter and a quote: each has its own escapes.
SECRET = 'wh/9b2d4e+SECRET ü&="x'
API_KEY = "rpa_KEY0unit5c8e"
redactor = Redactor([SECRET, API_KEY])


def _every_char_percent(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)


SPELLINGS = {
    "as is": SECRET,
    "URL-encoded (what we send)": quote(SECRET, safe=""),
    "URL-encoded, lower-case hex": _lower_hex(quote(SECRET, safe="")),
    "URL-encoded, `/` kept": quote(SECRET),
    "form-encoded (`+` for space)": quote_plus(SECRET),
    "every byte percent-encoded": _every_char_percent(SECRET),
    "URL-encoded twice": quote(quote(SECRET, safe=""), safe=""),
    "in JSON": json.dumps(SECRET),
    "in JSON, ASCII only": json.dumps(SECRET, ensure_ascii=True),
    "in JSON, escaped slashes": json.dumps(SECRET).replace("/", "\\/"),
    "in JSON inside JSON": json.dumps(json.dumps({"webhook": SECRET})),
    "every character as \\u": "".join(f"\\u{ord(c):04x}" for c in SECRET),
    "HTML-escaped": html.escape(SECRET),
    "HTML numeric references": "".join(f"&#{ord(c)};" for c in SECRET),
    "mixed per character": 'wh%2f9b2d4e\\u002bSECRET%20\\u00fc&amp;%3D\\"x',
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_the_secret_is_hidden_in_every_spelling(spelling: str) -> None:
    text = f"RunPod said: invalid webhook http://h/w?token={spelling} (see docs)"

    redacted = redactor(text)

    assert "9b2d4e" not in redacted and "SECRET" not in redacted, redacted
    assert redacted.startswith("RunPod said: invalid webhook http://h/w?token=") and MASK in redacted
    assert redacted.endswith(" (see docs)") or redacted.endswith("(see docs)")


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_the_secret_is_hidden_outside_any_url_too(spelling: str) -> None:
    redacted = redactor(f"body: {spelling}.")

    assert "9b2d4e" not in redacted and "SECRET" not in redacted, redacted
    assert redacted.startswith("body: ") and redacted.endswith(".") and MASK in redacted


def test_the_api_key_is_hidden_where_runpod_quotes_the_header() -> None:
    assert redactor(f'{{"error": "bad key Bearer {API_KEY}"}}') == f'{{"error": "bad key Bearer {MASK}"}}'


TOKEN_PARAMETERS = {
    "?token=": ("/webhooks/runpod?token=abc123", "/webhooks/runpod?token=***"),
    "encoded name": ("/webhooks/runpod?tok%65n=abc123", "/webhooks/runpod?tok%65n=***"),
    "upper-case name": ("/w?TOKEN=abc123&x=1", "/w?TOKEN=***&x=1"),
    "after ;": ("/w?x=1;token=abc123", "/w?x=1;token=***"),
    "encoded =": ("/w?token%3Dabc123", "/w?token%3D***"),
    "in a URL-encoded URL": (
        "u=http%3A%2F%2Fh%2Fw%3Ftoken%3Dabc123%26b%3D2",
        "u=http%3A%2F%2Fh%2Fw%3Ftoken%3D***",
    ),
    "after a JSON-escaped &": (
        '"h/w?a=1\\u0026token=abc123\\u0026b=2"',
        '"h/w?a=1\\u0026token=***\\u0026b=2"',
    ),
    "a cut excerpt": ('{"webhook": "http://h/w?token=wh%2F9b2d...', '{"webhook": "http://h/w?token=***'),
    "in free text": ("the token=abc123 is wrong", "the token=*** is wrong"),
}


@pytest.mark.parametrize(("text", "expected"), TOKEN_PARAMETERS.values(), ids=TOKEN_PARAMETERS.keys())
def test_any_token_query_value_is_hidden_whatever_its_spelling(text: str, expected: str) -> None:
    """A wrong token, a cut one or a secret changed since: not registered, still hidden."""
    assert Redactor()(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'HTTP 401 refused: {"error": "Unauthorized"}',
        "class_tokens=style SBai_style_1",
        "tokens=3, max_tokens=5, mytoken=abc, access_token=x",
        "token= (empty)",
        "V8 style_1_vV8.safetensors https://b.s3-accelerate.amazonaws.com/k?x=1",
    ],
)
def test_text_without_a_secret_is_left_as_it_is(text: str) -> None:
    assert redactor(text) == text


def test_a_secret_containing_another_is_hidden_whole() -> None:
    assert Redactor(["abcd1234", "abcd1234-long-secret"])("x abcd1234-long-secret y") == f"x {MASK} y"


def test_the_redactor_never_shows_its_secrets() -> None:
    assert SECRET not in repr(redactor) and API_KEY not in repr(redactor)


def test_registered_secrets_are_hidden_by_the_process_wide_redact() -> None:
    secret = "registry-Unit-7c1e0b"
    assert redact(f"a {secret}") == f"a {secret}"
    register_secrets(secret, None, "")
    assert redact(f"a {secret} b {quote(secret)}") == f"a {MASK} b {MASK}"


def test_credential_shapes_are_masked() -> None:
    secret_key = "Un1tTest/SecretKey+ForTests0000000000000"
    assert len(secret_key) == 40  # the length of an AWS secret access key
    text = f"key AKIAUNITTEST7EXAMPL secret {secret_key} at https://u:p@h/x"
    assert mask_credential_shapes(text) == "key *** secret *** at https://***@h/x"


# --------------------------------------------------------------------------- terminals


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("style\x1b[2J_1", "style\\x1b[2J_1"),
        ("title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),
        ("two\nlines\r", "two\\nlines\\r"),
        ("c1 \x9b31m csi", "c1 \\x9b31m csi"),
        ("bidi \u202egnp.exe", "bidi \\u202egnp.exe"),
        ("line sep \u2028", "line sep \\u2028"),
        ("plain ü, 日本, emoji 🎨", "plain ü, 日本, emoji 🎨"),
    ],
)
def test_control_and_format_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


def test_escape_controls_can_keep_line_breaks() -> None:
    assert escape_controls("a\nb\x1b", keep="\n") == "a\nb\\x1b"


def test_json_for_terminal_is_the_same_json_without_raw_control_characters() -> None:
    data = {"key": "a\x1b[2J\x7f\x9b\u202e\u2028 ü 🎨", "n": [1, 2]}
    text = json.dumps(data, indent=2, ensure_ascii=False)

    shown = json_for_terminal(text)

    assert json.loads(shown) == data
    assert [c for c in shown if not c.isprintable() and c != "\n"] == []
    assert "ü 🎨" in shown  # printable text stays readable


# --------------------------------------------------------------------------- logs


def _record(
    msg: str, args: tuple[object, ...], name: str = "loraledger", **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_the_log_filter_redacts_the_access_log_arguments_and_keeps_their_shape() -> None:
    register_secrets(SECRET)
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", f"/webhooks/runpod?tok%65n={quote(SECRET, safe='')}", "1.1", 401),
        name="uvicorn.access",
    )

    RedactingLogFilter().filter(record)

    assert isinstance(record.args, tuple) and len(record.args) == 5 and record.args[4] == 401
    assert record.getMessage() == '127.0.0.1:5 - "POST /webhooks/runpod?tok%65n=*** HTTP/1.1" 401'


def test_the_log_filter_redacts_messages_arguments_and_tracebacks_and_escapes_controls() -> None:
    register_secrets(SECRET)
    try:
        raise ValueError(f"RunPod quoted {SECRET}\x1b[2J")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record("%s; retrying in %.2fs", (f"refused: {SECRET}\x1b[2J", 0.5), color_message="%s; %.2f")
    record.exc_info = exc_info

    RedactingLogFilter().filter(record)
    text = logging.Formatter().format(record)

    assert SECRET not in text and "9b2d4e" not in text
    assert record.getMessage() == "refused: ***\\x1b[2J; retrying in 0.50s"
    assert "RunPod quoted ***\\x1b[2J" in text and "Traceback" in text


def test_the_log_filter_catches_a_secret_split_across_arguments() -> None:
    register_secrets(SECRET)
    record = _record("%s%s", (SECRET[:5], SECRET[5:]), color_message="%s%s")

    RedactingLogFilter().filter(record)

    assert record.getMessage() == MASK and "color_message" not in record.__dict__


def test_extra_fields_of_a_json_log_line_are_redacted_too() -> None:
    from loraledger.api.logging_setup import JsonFormatter

    secret = "extra-Field-Secret-91ab"
    register_secrets(secret)
    record = logging.LogRecord("loraledger.outcomes", logging.INFO, __file__, 1, "outcome", None, None)
    record.key = f"prefix/{secret}\x1b[2J.safetensors"  # as `extra={"key": ...}` sets it
    record.count = 3

    RedactingLogFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))

    assert line["key"] == f"prefix/{MASK}\\x1b[2J.safetensors" and line["count"] == 3
