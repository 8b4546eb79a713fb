"""The operator's routes and the request context (CONTRACT §10).

`/metrics`: the counters of adapters/metrics.py (every worker's, in multiprocess mode) and the
state gauges, read from the ledger at each scrape so every worker answers the same.
`/readyz`: 200 when the store answers and the files are at most 5 s behind the log, else 503 and
why. `RequestContext`: each request's id (the caller's `X-Request-ID` when it is a plain token,
else a new one) on its log lines and its answer, and its latency by route template.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loraledger.adapters.metrics import record_request, scrape_text
from loraledger.api.facade import Service
from loraledger.api.logging_setup import request_id_var
from loraledger.api.schemas import HealthAnswer

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it cannot break a log line or hide anything in it.
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

operating_router = APIRouter()


class LedgerState:
    """The state gauges, computed from the ledger when scraped."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def describe(self) -> Iterable[Metric]:
        return []  # computed at collection only

    def collect(self) -> Iterable[Metric]:
        try:
            state = self.service.operating_state(datetime.now(UTC))
        except Exception as error:  # the store is away: the counters are still worth scraping
            log.warning("the state gauges could not be read: %s", type(error).__name__)
            return
        versions = GaugeMetricFamily(
            "loraledger_versions", "Training versions by subject kind and status", labels=["kind", "status"]
        )
        for (kind, status), count in sorted(state.versions.items()):
            versions.add_metric([kind, status], count)
        yield versions
        yield GaugeMetricFamily(
            "loraledger_projection_lag_seconds",
            "Age of the oldest event the projection files do not hold yet (0: they hold all)",
            value=state.projection_lag_seconds,
        )
        yield GaugeMetricFamily(
            "loraledger_pending_oldest_age_seconds",
            "Age of the oldest training still pending (0: none is)",
            value=state.pending_oldest_age_seconds,
        )


@operating_router.get("/metrics", operation_id="metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(scrape_text(LedgerState(service)), media_type=CONTENT_TYPE_LATEST)


@operating_router.get(
    "/readyz",
    operation_id="readyz",
    response_model=HealthAnswer,
    response_model_exclude_unset=True,
    responses={
        503: {
            "model": HealthAnswer,
            "description": "The event store does not answer or refuses writes, or the files are more "
            "than 5 s behind the event log.",
        }
    },
)
def readyz(request: Request, response: Response) -> dict[str, str]:
    service: Service = request.app.state.service
    problem = service.readiness(datetime.now(UTC))
    if problem is None:
        return {"status": "ok"}
    response.status_code = 503
    return {"status": "unavailable", "detail": problem}


class RequestContext:
    """ASGI middleware: the request id (on every log line of the request, in the answer's
    `X-Request-ID`) and the request's latency by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _given_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        began = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record_request(
                _route_of(scope), str(scope.get("method", "")), status, time.perf_counter() - began
            )
            request_id_var.reset(token)


def _given_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _GIVEN_ID.fullmatch(text) else None
    return None


def _route_of(scope: Scope) -> str:
    """The matched route's template (`/styles/{style_id}/…`), never the raw path: one series per
    route, whatever ids are asked for."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
