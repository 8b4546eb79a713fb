"""The pages' pure helpers: where sign-in may lead back to, the session cookie's value, how values
are printed, and which access-log lines an open page's polling leaves out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from loraledger.api.logging_setup import QuietLivePolls
from loraledger.api.page_render import TEMPLATES, safe_next, session_valid, session_value, subject_rows
from loraledger.projections.runner import SubjectSummary


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/styles/1?at=2025-01-01", "/ui/styles/1?at=2025-01-01"),
        ("", "/ui/"),
        (None, "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui//evil.example", "/ui/"),
        ("/ui/\\evil.example", "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("/metrics", "/ui/"),
    ],
)
def test_sign_in_leads_back_only_to_a_page_of_ours(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_the_session_cookie_stands_for_the_token_without_holding_it() -> None:
    cookie = session_value("s3cret-token")
    assert "s3cret-token" not in cookie
    assert session_valid(cookie, "s3cret-token")
    assert not session_valid(cookie, "another-token")
    assert not session_valid("s3cret-token", "s3cret-token")
    assert not session_valid(None, "s3cret-token")


def test_a_template_escapes_markup_in_every_value() -> None:
    html = TEMPLATES.get_template("problem.html").render(
        heading="<b>h</b>", detail="<script>x()</script>", live_url=None, stamp="", query="", signed_in=False
    )
    assert "<script>x()" not in html and "&lt;script&gt;x()" in html and "<b>h</b>" not in html


def test_the_list_puts_the_most_recently_active_subject_first() -> None:
    older = SubjectSummary(1, {"completed": 2, "failed": 1}, datetime(2025, 1, 1, tzinfo=UTC), 9)
    newer = SubjectSummary(2, {"pending": 1}, datetime(2025, 6, 1, 12, 30, 5, 250_000, tzinfo=UTC), 3)

    rows = subject_rows([older, newer])

    assert [row.style_id for row in rows] == [2, 1]
    assert rows[0].last_iso == "2025-06-01T12:30:05.250Z" and rows[0].last_text == "2025-06-01 12:30:05 UTC"
    assert rows[1].statuses == [("completed", "✓", "completed", 2), ("failed", "✕", "failed", 1)]
    assert rows[1].versions == 3


def _access(path: str, status: int) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", path, "1.1", status),
        None,
    )


def test_answered_live_polls_leave_no_access_line_but_refused_ones_and_pages_do() -> None:
    quiet = QuietLivePolls()
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.setLevel(logging.INFO)
    try:
        assert not quiet.filter(_access("/ui/live?style=1", 200))
        assert not quiet.filter(_access("/ui/live", 200))
        assert quiet.filter(_access("/ui/live", 401))
        assert quiet.filter(_access("/ui/", 200))
        assert quiet.filter(_access("/ui/lively", 200))
        access.setLevel(logging.DEBUG)
        assert quiet.filter(_access("/ui/live", 200))
    finally:
        access.setLevel(level)
