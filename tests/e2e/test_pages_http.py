"""The pages over plain HTTP (no browser): what they answer, that they escape, that they only
read, and that a set API token guards them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import FIXTURES, LedgerServer, ServerFactory

HOSTILE = '<script>alert("x")</script>'
TOKEN = "pages-http-token-41c9"


def test_the_root_leads_to_the_pages(server: LedgerServer) -> None:
    response = server.client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/ui/"


def test_pages_are_html_with_a_policy_that_runs_only_the_services_own_script(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    for path in ("/ui/", "/ui/styles/1", "/ui/styles/1/versions/V9", "/ui/styles/1/versions/v9"):
        response = server.client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert '<script src="/ui/static/pages.js"' in response.text
    for asset in ("/ui/static/pages.js", "/ui/static/pages.css"):
        assert server.client.get(asset).status_code == 200


def test_every_dynamic_value_is_escaped(server: LedgerServer) -> None:
    server.started_job(1, "V9", description=HOSTILE, parameters={HOSTILE: HOSTILE})
    for path in ("/ui/styles/1", "/ui/styles/1/versions/V9", "/ui/styles/1?at=2999-01-01T00:00:00Z"):
        text = server.client.get(path).text
        assert HOSTILE not in text, path
        assert "&lt;script&gt;alert(" in text, path


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ui/styles/01", 422),
        ("/ui/styles/abc", 422),
        ("/ui/styles/1?at=yesterday", 422),
        ("/ui/styles/1/versions/W9", 422),
        ("/ui/styles/2", 404),
        ("/ui/styles/1/versions/V8", 404),
        ("/ui/search?q=no-such-job", 404),
        ("/ui/search?q=" + "x" * 3000, 422),
    ],
)
def test_bad_or_unknown_addresses_answer_a_page_saying_why_and_change_nothing(
    server: LedgerServer, path: str, status: int
) -> None:
    server.started_job(1, "V9")
    before = server.document_bytes(1)
    response = server.client.get(path)
    assert response.status_code == status, response.text
    assert server.client.get(path).status_code == status  # a repeat gets the same answer
    assert server.document_bytes(1) == before


def test_the_search_opens_the_version_a_job_id_or_key_names(server: LedgerServer) -> None:
    job_id = server.started_job(3, "V2")
    for text in (
        job_id,
        "style_3_vV2",
        "prefix/style_3_vV2.safetensors",
        "https://b.s3.amazonaws.com/p/style_3_v2.safetensors",
    ):
        response = server.client.get("/ui/search", params={"q": text})
        assert response.status_code == 303, (text, response.text)
        assert response.headers["location"].startswith("/ui/styles/3/versions/V2?found=")


def test_the_file_at_an_earlier_time_says_what_changed_since(server: LedgerServer) -> None:
    job_id = server.started_job(1, "V9")
    then = datetime.now(UTC).isoformat()  # after the start was recorded, before the webhook
    assert server.stub.complete(job_id).status_codes == [200]

    page = server.client.get("/ui/styles/1", params={"at": then}).text

    assert "What changed since" in page and "completedAt" in page


def test_the_live_stamp_changes_with_an_event_on_its_style_only(server: LedgerServer) -> None:
    job_id = server.started_job(1, "V9")
    server.started_job(2, "V1")
    stamp = server.client.get("/ui/live", params={"style": 1}).json()["stamp"]
    everything = server.client.get("/ui/live").json()["stamp"]

    server.started_job(2, "V2")
    assert server.client.get("/ui/live", params={"style": 1}).json()["stamp"] == stamp
    assert server.client.get("/ui/live").json()["stamp"] != everything

    assert server.stub.complete(job_id).status_codes == [200]
    assert server.client.get("/ui/live", params={"style": 1}).json()["stamp"] != stamp


def test_pages_only_read(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    before = server.document_bytes(1)
    for path in ("/ui/", "/ui/styles/1", "/ui/styles/1/versions/V9"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert server.client.request(method, path).status_code == 405, (method, path)
    assert server.document_bytes(1) == before


def test_with_a_token_pages_need_the_sign_in_cookie(make_server: ServerFactory) -> None:
    server = make_server(extra_env={"LORALEDGER_API_TOKEN": TOKEN})
    for path in ("/ui/", "/ui/styles/1", "/ui/search?q=x"):
        response = server.client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/ui/sign-in?next=")
    assert server.client.get("/ui/live").status_code == 401
    server.client.cookies.set("loraledger_session", TOKEN)  # the token itself is not the cookie
    assert server.client.get("/ui/").status_code == 303
    server.client.cookies.clear()

    refused = server.client.post("/ui/sign-in", data={"token": "wrong", "next": "/ui/"})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    signed = server.client.post("/ui/sign-in", data={"token": TOKEN, "next": "//evil.example/"})
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN not in cookie
    assert server.client.get("/ui/").status_code == 200
    assert json.loads(server.client.get("/ui/live").text)["stamp"]


HOSTILE_ADDRESSES = [
    "/ui/styles/1/versions/%00",
    "/ui/styles/1/versions/V99999999999",
    "/ui/styles/99999999999",
    "/ui/styles/-1",
    "/ui/styles/1?at=%00",
    "/ui/styles/1?at=0001-01-01T00:00:00%2B01:00",
    "/ui/styles/1?at=9999-12-31T23:59:59-23:59",
    "/ui/styles/1?at=" + "9" * 200,
    "/ui/search?q=%00",
    "/ui/search?q=%ff%fe",
    "/ui/search?q=https://%5B::1",
    "/ui/search?q=style_1_v%2F..%2F..%2Fetc",
    "/ui/styles/1/versions/V9?found=%3Cscript%3E",
    "/ui/live?style=abc",
    "/ui/live?style=" + "1" * 20,
    "/ui/sign-in?next=//evil.example/",
    "/ui/static/../pyproject.toml",
    "/ui/static/%2e%2e/pages.py",
]


@pytest.mark.parametrize("path", HOSTILE_ADDRESSES)
def test_hostile_addresses_never_answer_500_nor_echo_markup(server: LedgerServer, path: str) -> None:
    server.started_job(1, "V9")
    response = server.client.get(path)
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    assert "<script>" not in response.text.replace('<script src="/ui/static/pages.js" defer></script>', "")


@pytest.mark.postgres
def test_the_pages_read_a_postgresql_store_too(make_server: ServerFactory) -> None:
    server = make_server(postgres=True)
    job_id = server.started_job(4, "V2", description="on postgres")
    assert server.stub.complete(job_id).status_codes == [200]

    assert "style 4" in server.client.get("/ui/").text
    timeline = server.client.get("/ui/styles/4/versions/V2").text
    assert 'data-type="TrainingCompleted"' in timeline and "on postgres" in timeline
    located = server.client.get("/ui/search", params={"q": job_id})
    assert located.headers["location"].startswith("/ui/styles/4/versions/V2")
    assert (
        "What changed since" in server.client.get("/ui/styles/4", params={"at": "2000-01-01T00:00:00Z"}).text
    )


def test_a_search_for_a_job_whose_webhook_is_parked_says_so(server: LedgerServer) -> None:
    body = json.loads(next((FIXTURES / "runpod").glob("other_job_completed_*.json")).read_text())
    assert server.post_webhook(body).status_code == 202

    response = server.client.get("/ui/search", params={"q": body["id"]})

    assert response.status_code == 404
    assert "waits, parked" in response.text and "(1 report)" in response.text
