"""How the pages are drawn and who may see them: the Jinja2 templates (autoescaped: every value
is text unless a template says otherwise), their filters, the security headers, and the sign-in
cookie that stands for the API token."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from loraledger.domain.times import format_time
from loraledger.projections.runner import SubjectSummary

NEVER = datetime.min.replace(tzinfo=UTC)
SESSION_COOKIE = "loraledger_session"
SESSION_DAYS = 7
# The cookie holds a keyed hash of the token, never the token itself (a stolen cookie does not
# give the bearer token of the API).
_SESSION_PURPOSE = b"loraledger pages session v1"
SHORT_VALUE = 200  # characters of a changed value shown inline; the whole value is in the details
STATUS_MARKS = {"completed": "✓", "pending": "…", "failed": "✕"}
# No inline script or style anywhere: the page can only run the service's own script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def session_value(token: str) -> str:
    return hmac.new(token.encode(), _SESSION_PURPOSE, hashlib.sha256).hexdigest()


def session_valid(cookie: str | None, token: str) -> bool:
    return cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode())


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of ours, never another site (`//host`, `/\\host`)."""
    if not target or not target.startswith("/ui/") or "//" in target or "\\" in target:
        return "/ui/"
    return target


def _utc_text(iso: str) -> str:
    """`2025-10-13T19:36:17.724Z` -> `2025-10-13 19:36:17 UTC` (the page's script shows local time)."""
    return iso.replace("T", " ")[:19] + " UTC" if len(iso) >= 19 and iso.endswith("Z") else iso


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _short_json(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = json.dumps(text, ensure_ascii=False) if isinstance(value, str) else text
    return text if len(text) <= SHORT_VALUE else text[: SHORT_VALUE - 1] + "…"


def _status_class(status: Any) -> str:
    return status if status in STATUS_MARKS else "unknown"


def _basename(url: Any) -> str:
    return str(url).rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class SubjectRow:
    """One line of the subjects list, its values ready to print (the list may hold thousands)."""

    style_id: int
    statuses: list[tuple[str, str, str, int]]  # (css class, mark, status, how many), by status
    versions: int
    last_iso: str | None
    last_text: str


def subject_rows(subjects: Iterable[SubjectSummary]) -> list[SubjectRow]:
    """The most recently active first."""
    rows = []
    for subject in sorted(subjects, key=lambda s: s.last_activity or NEVER, reverse=True):
        statuses = [
            (_status_class(status), STATUS_MARKS.get(status, "?"), status, count)
            for status, count in sorted(subject.by_status.items())
        ]
        iso = _iso(subject.last_activity)
        rows.append(
            SubjectRow(subject.style_id, statuses, sum(subject.by_status.values()), iso, _utc_text(iso or ""))
        )
    return rows


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("loraledger.api", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        utc_text=_utc_text,
        iso=_iso,
        short_json=_short_json,
        status_class=_status_class,
        status_mark=lambda status: STATUS_MARKS.get(status, "?"),
        basename=_basename,
    )
    return environment


TEMPLATES = _environment()


def page(name: str, context: Mapping[str, Any], status_code: int = 200) -> HTMLResponse:
    """A template rendered into an answer with the security headers."""
    defaults: dict[str, Any] = {"live_url": None, "stamp": "", "query": "", "signed_in": False}
    html = TEMPLATES.get_template(name).render({**defaults, **context})
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def problem(status_code: int, heading: str, detail: str, **context: Any) -> HTMLResponse:
    return page("problem.html", {"heading": heading, "detail": detail, **context}, status_code)
