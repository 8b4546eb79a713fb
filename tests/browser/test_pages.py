"""The pages in a real browser: the list, the search, a version's timeline and its decision's
rule, a webhook appearing live, signing in when a token is set, and hostile text shown as text."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LIVE_WITHIN_MS, PHONE, bearer, open_ui
from tests.support.server import LedgerServer, ServerFactory

PARAMETERS = {"learning_rate": 0.0003, "max_train_steps": 3600}
HOSTILE = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'
TOKEN = "pages-browser-token-7d2e"


def test_the_list_finds_a_job_id_and_the_version_shows_its_decisions_rule(
    server: LedgerServer, page: Page
) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS, description="more steps")
    assert server.stub.complete(job_id).status_codes == [200]
    server.started_job(2, "V1")
    rule = server.history(1, "V9")[-1]["decision"]["rule"]

    open_ui(page, server)
    expect(page.get_by_role("link", name="style 1")).to_be_visible()
    expect(page.get_by_role("link", name="style 2")).to_be_visible()
    page.get_by_role("searchbox").fill(job_id)
    page.get_by_role("button", name="Find").click()

    expect(page).to_have_url(re.compile(r"/ui/styles/1/versions/V9"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("completed")
    completion = page.locator('li.event[data-type="TrainingCompleted"]')
    expect(completion.locator("code.rule")).to_have_text(rule)
    expect(completion.locator("strong.outcome")).to_have_text("complete")
    expect(completion.locator(".source")).to_have_text("from webhook")
    expect(completion.locator(".changed")).to_contain_text("completedAt")
    # Raw payloads are collapsed until asked for.
    payload = completion.locator("details").first
    expect(payload.locator("pre")).to_be_hidden()
    payload.locator("summary").click()
    expect(payload.locator("pre")).to_contain_text(job_id)


def test_a_time_shows_in_the_readers_zone_with_utc_on_hover(server: LedgerServer, page: Page) -> None:
    server.started_job(1, "V9")
    started = server.entry(1, "V9")["timestamp"]

    open_ui(page, server, "/ui/styles/1")

    shown = page.locator(f'time[datetime="{started}"]').first
    expect(shown).to_have_attribute("title", f"{started} (UTC)")
    expect(shown).to_contain_text(re.compile(r"CES?T|GMT\+[12]"))  # the browser's zone: Paris


def test_a_webhook_appears_on_the_open_version_page_without_a_reload(
    server: LedgerServer, page: Page
) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS)
    open_ui(page, server, "/ui/styles/1/versions/V9")
    expect(page.locator("li.event")).to_have_count(3)
    page.evaluate("window.sameDocument = true")  # gone if the page were reloaded

    assert server.stub.complete(job_id).status_codes == [200]

    completion = page.locator('li.event[data-type="TrainingCompleted"]')
    expect(completion).to_be_visible(timeout=LIVE_WITHIN_MS)
    expect(page.get_by_role("heading", level=1)).to_contain_text("completed")
    assert page.evaluate("window.sameDocument") is True


def test_the_list_shows_a_new_subject_without_a_reload(server: LedgerServer, page: Page) -> None:
    server.started_job(1, "V9")
    open_ui(page, server)
    page.evaluate("window.sameDocument = true")

    server.started_job(7, "V1")

    expect(page.get_by_role("link", name="style 7")).to_be_visible(timeout=LIVE_WITHIN_MS)
    assert page.evaluate("window.sameDocument") is True


def test_with_a_token_every_page_asks_to_sign_in_and_the_cookie_is_httponly(
    make_server: ServerFactory, page: Page
) -> None:
    server = make_server(extra_env={"LORALEDGER_API_TOKEN": TOKEN})
    response = server.client.post("/styles/1/trainings", json={"version_name": "V9"}, headers=bearer(TOKEN))
    assert response.status_code == 201, response.text

    open_ui(page, server, "/ui/styles/1/versions/V9")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    expect(page.get_by_text("style 1")).to_have_count(0)
    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not the one")

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/ui/styles/1/versions/V9$"))
    expect(page.locator("li.event")).to_have_count(3)
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""


def test_a_hostile_description_is_shown_as_text_and_never_runs(server: LedgerServer, page: Page) -> None:
    server.started_job(1, "V9", description=HOSTILE, parameters={"note": HOSTILE})

    for path in ("/ui/styles/1", "/ui/styles/1/versions/V9"):
        open_ui(page, server, path)
        expect(page.get_by_text(HOSTILE).first).to_be_visible()
        assert page.evaluate("window.pwned") is None
        assert page.locator("main img, main script").count() == 0


def test_at_phone_width_nothing_is_wider_than_the_screen(server: LedgerServer, page: Page) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS, description="a long description " * 8)
    assert server.stub.complete(job_id).status_codes == [200]
    page.set_viewport_size(PHONE)

    for path in ("/ui/", "/ui/styles/1", "/ui/styles/1/versions/V9"):
        open_ui(page, server, path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone"


def test_the_file_as_it_was_shows_what_changed_since(server: LedgerServer, page: Page) -> None:
    job_id = server.started_job(1, "V9", parameters=PARAMETERS)
    then = page.evaluate("new Date().toISOString()")  # after the start, before the webhook
    assert server.stub.complete(job_id).status_codes == [200]

    open_ui(page, server, "/ui/styles/1")
    page.get_by_label("Show the file as it was at").fill(then)
    page.get_by_role("button", name="Show").click()

    expect(page).to_have_url(re.compile(r"/ui/styles/1\?at="))
    changes = page.locator("ul.changes")
    expect(changes).to_contain_text("V9")
    expect(changes).to_contain_text("completedAt")
    expect(page.locator("table.versions")).to_contain_text("pending")
