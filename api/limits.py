"""Request bodies are read here, before any route sees them: bounded in size and in time.

One ASGI middleware for every route, so no route can forget a limit:

* a body over the limit is a 413: at once when `Content-Length` says so, else as soon as the
  streamed (chunked) body grows past it; nothing more of it is read or kept;
* a body that has not fully arrived within the read deadline is a 408 (a client trickling a
  byte at a time cannot hold a connection and its buffer for ever);
* a client that hangs up in the middle of its body gets no answer and leaves no trace (there is
  nobody to answer, and nothing was asked yet).

Routes then read the body from memory, as if it had just arrived whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("loraledger")


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class BodyLimits:
    """ASGI middleware: `max_bytes` for every body, `route_limits` for paths that need another."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        read_timeout: float,
        route_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.route_limits = dict(route_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.route_limits.get(scope["path"], self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"the body is larger than {limit} bytes")
            return
        try:
            async with asyncio.timeout(self.read_timeout):
                body = await _read_body(receive, limit)
        except _TooLarge:
            await _refuse(send, 413, f"the body is larger than {limit} bytes")
            return
        except TimeoutError:
            await _refuse(send, 408, f"the body did not arrive within {self.read_timeout:g} seconds")
            return
        except _ClientGone:
            log.info("%s %s: the client hung up before its body arrived", scope["method"], scope["path"])
            return
        await self.app(scope, _replay(body, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then whatever the server says next (a disconnect)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(send: Send, status: int, detail: str) -> None:
    """Answer before the body was read: the connection is closed after it, since the rest of
    the body (which may never come) would otherwise be read as the next request."""
    content = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
