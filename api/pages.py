"""The pages (CONTRACT §11): server-rendered HTML over the facade's reads; they change nothing.

`/ui/` lists the styles, `/ui/search` opens the version a job id, model name, S3 key or URL
names, `/ui/styles/{id}` shows the file (`?at=` as it was then, with what changed since), and
`/ui/styles/{id}/versions/{name}` the version's timeline. `/ui/live` answers a stamp that
changes with every new event, which an open page polls to refresh itself. With
`LORALEDGER_API_TOKEN` set, every page needs the sign-in cookie (`/ui/sign-in`).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from loraledger.api.dependencies import ServiceDep
from loraledger.api.facade import Service
from loraledger.api.page_render import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SESSION_DAYS,
    page,
    problem,
    safe_next,
    session_valid,
    session_value,
    subject_rows,
)
from loraledger.domain.errors import UnknownVersion
from loraledger.domain.naming import NameRejected, parse_style_id, parse_version_name
from loraledger.domain.times import parse_time

SIGN_IN_MAX_BYTES = 4_096
STATIC = StaticFiles(packages=[("loraledger.api", "static")])

router = APIRouter(include_in_schema=False)


class SignInNeeded(Exception):
    """A page asked for without the sign-in cookie while the API token is set."""


def signed_in(request: Request, service: ServiceDep) -> bool:
    """True when the reader signed in; SignInNeeded when a token is set and they did not."""
    token = service.settings.api_token
    if token is None:
        return False
    if not session_valid(request.cookies.get(SESSION_COOKIE), token.get_secret_value()):
        raise SignInNeeded
    return True


SignedIn = Annotated[bool, Depends(signed_in)]


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
def subjects_page(service: ServiceDep, reader: SignedIn) -> Response:
    stamp = service.live_stamp()  # before the read: a race costs a refresh, never a missed event
    return _subjects(service, reader, stamp)


@router.get("/ui/search")
def search(
    service: ServiceDep, reader: SignedIn, q: Annotated[str, Query(max_length=2_000)] = ""
) -> Response:
    located = service.locate(q)
    if located is None:
        parked = service.parked_reports(q)
        stamp = service.live_stamp()
        return _subjects(service, reader, stamp, query=q, not_found=True, parked=parked, status_code=404)
    target = f"/ui/styles/{located.style_id}/versions/{located.version_name}?found={quote(located.found_as)}"
    return RedirectResponse(target, status_code=303)


@router.get("/ui/styles/{style_id}")
def style_page(
    style_id: str, service: ServiceDep, reader: SignedIn, at: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    try:
        style = parse_style_id(style_id)
        # In UTC at once: a moment that has none (year 1 at +01:00) is refused here, not drawn later.
        moment = parse_time(at).astimezone(UTC) if at.strip() else None
    except (NameRejected, ValueError, OverflowError) as error:
        return problem(422, "Not a page", _why(error, at), signed_in=reader)
    stamp = service.live_stamp(style)
    view = service.style_view(style, moment)
    if view is None:
        return problem(
            404, f"Style {style} has no versions", "Nothing was recorded for it.", signed_in=reader
        )
    context = {"view": view, "at_text": at, "document_text": _document_text(view.entries)}
    return page("style.html", {**context, **_live(f"/ui/live?style={style}", stamp), "signed_in": reader})


@router.get("/ui/styles/{style_id}/versions/{name}")
def version_page(
    style_id: str,
    name: str,
    service: ServiceDep,
    reader: SignedIn,
    found: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    try:
        style, version = parse_style_id(style_id), parse_version_name(name)
    except NameRejected as error:
        return problem(422, "Not a page", str(error), signed_in=reader)
    stamp = service.live_stamp(style)
    try:
        items = service.timeline(style, version)
    except UnknownVersion:
        return problem(
            404, f"Style {style} has no {version}", "Nothing was recorded for it.", signed_in=reader
        )
    context: dict[str, Any] = {
        "style_id": style,
        "version_name": version,
        "items": items,
        "current": items[-1].entry,
        "found_as": found if found in ("job id", "model name", "S3 key", "LoRA URL") else "",
        "signed_in": reader,
    }
    return page("version.html", {**context, **_live(f"/ui/live?style={style}", stamp)})


@router.get("/ui/live")
def live(service: ServiceDep, _: SignedIn, style: Annotated[str, Query(max_length=12)] = "") -> Response:
    """The stamp an open page polls; 401 (not a redirect) for a script without the cookie."""
    return JSONResponse({"stamp": service.live_stamp(parse_style_id(style) if style else None)})


@router.get("/ui/sign-in")
def sign_in_form(service: ServiceDep, next: str = "") -> Response:
    if service.settings.api_token is None:
        return RedirectResponse("/ui/", status_code=303)
    return page("sign_in.html", {"next": safe_next(next), "refused": False, "show_search": False})


@router.post("/ui/sign-in")
async def sign_in(request: Request, service: ServiceDep) -> Response:
    token = service.settings.api_token
    if token is None:
        return RedirectResponse("/ui/", status_code=303)
    body = await request.body()
    form = parse_qs(body[:SIGN_IN_MAX_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    given, target = form.get("token", [""])[0], safe_next(form.get("next", [""])[0])
    if not session_valid(session_value(given), token.get_secret_value()):
        context = {"next": target, "refused": True, "show_search": False}
        return page("sign_in.html", context, status_code=401)
    answer = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    answer.set_cookie(
        SESSION_COOKIE,
        session_value(token.get_secret_value()),
        max_age=SESSION_DAYS * 86_400,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.post("/ui/sign-out")
def sign_out() -> Response:
    answer = RedirectResponse("/ui/sign-in", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
    return answer


async def sign_in_needed(request: Request, _: Exception) -> Response:
    """A page: off to the sign-in form, coming back here after; the live stamp: 401."""
    if request.url.path == "/ui/live":
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/sign-in?next={quote(safe_next(back), safe='')}", status_code=303)


def _subjects(service: Service, reader: bool, stamp: str, **extra: Any) -> Response:
    summaries = service.subjects()
    totals: dict[str, int] = {}
    for subject in summaries:
        for status, count in subject.by_status.items():
            totals[status] = totals.get(status, 0) + count
    context = {
        "subjects": subject_rows(summaries),
        "totals": {"versions": sum(totals.values()), "by_status": sorted(totals.items())},
        "signed_in": reader,
        **extra,
    }
    status_code = context.pop("status_code", 200)
    return page("subjects.html", {**context, **_live("/ui/live", stamp)}, status_code)


def _live(url: str, stamp: str) -> dict[str, str]:
    return {"live_url": url, "stamp": stamp}


def _document_text(entries: list[dict[str, Any]]) -> str:
    return json.dumps({"versions": entries}, indent=2, ensure_ascii=False)


def _why(error: Exception, at: str) -> str:
    if isinstance(error, NameRejected):
        return str(error)
    return f"{at[:64]!r} is not a time: give ISO-8601, e.g. 2025-10-13T19:36:17Z (no zone means UTC)"


def install_pages(app: FastAPI) -> None:
    """The pages' routes, their assets (served by the service itself: no CDN) and the sign-in redirect."""
    app.include_router(router)
    app.mount("/ui/static", STATIC, name="pages-static")
    app.add_exception_handler(SignInNeeded, sign_in_needed)
