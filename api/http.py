"""The HTTP API (CONTRACT §4): each route parses, calls one facade method, renders.

Errors are JSON `{"detail": ...}`; bad input is 4xx, never 500. Mutating routes need the bearer
token when `LORALEDGER_API_TOKEN` is set; the webhook has its own secret in `?token=`.

Over 350 lines because CONTRACT §4 is read here in one place: every route with its guards (tokens,
body limits read as the body arrives), its documented answers (models in api/schemas.py) and the
status each error answers with. It decides nothing: each route is a few lines around one facade
method (api/facade.py).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import unquote_plus

from eventsourcing.persistence import PersistenceError
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPBearer
from pydantic import BaseModel, Field, StrictInt, ValidationError
from pydantic_core import to_jsonable_python

from loraledger.adapters.metrics import process_stopped, record_webhook
from loraledger.adapters.redaction import install_log_redaction, redact, register_secrets
from loraledger.adapters.runpod import RunPodError
from loraledger.adapters.runpod_payloads import JobPayload
from loraledger.adapters.s3_listing import S3ListingError
from loraledger.adapters.training_start import InvalidRunInput
from loraledger.api.bootstrap import open_serving_service
from loraledger.api.dependencies import ServiceDep
from loraledger.api.facade import Service
from loraledger.api.limits import BodyLimits
from loraledger.api.operating import RequestContext, operating_router
from loraledger.api.pages import install_pages
from loraledger.api.render import rebuild_json, reconcile_report_json, sync_report_json, webhook_json
from loraledger.api.schemas import (
    WEBHOOK_RESPONSES,
    HealthAnswer,
    RebuildAnswer,
    ReconcileReport,
    SkippedFiles,
    SyncReport,
    TrainingVersionsDocument,
    UnmatchedDeliveries,
    VersionEntry,
    VersionHistory,
    WebhookAnswer,
    error_responses,
)
from loraledger.api.settings import MissingSetting, Settings
from loraledger.api.unattended import Unattended
from loraledger.domain import blobs
from loraledger.domain.blobs import InvalidJson
from loraledger.domain.errors import LedgerError, OwnedFieldError, UnknownVersion, VersionConflict
from loraledger.domain.naming import NameRejected, parse_style_id, parse_version_name
from loraledger.domain.parse_duration import parse_duration

log = logging.getLogger(__name__)

STYLE_ID_PATTERN = r"^[1-9][0-9]{0,8}$"


# --------------------------------------------------------------------------- dependencies


def require_api_token(request: Request, service: ServiceDep) -> None:
    expected = service.settings.api_token
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def require_store(service: ServiceDep) -> None:
    if not service.store_is_up():
        raise HTTPException(
            503,
            "the event store is unavailable; nothing was recorded, try again",
            headers={"Retry-After": "5"},
        )


# Declared for OpenAPI only (auto_error=False: they never answer): the checks and their error
# answers are require_api_token's and the webhook route's own.
bearer_scheme = HTTPBearer(
    scheme_name="apiToken",
    description="`LORALEDGER_API_TOKEN`; needed by mutating routes when it is set.",
    auto_error=False,
)
webhook_token_scheme = APIKeyQuery(
    name="token",
    scheme_name="webhookToken",
    description="`LORALEDGER_WEBHOOK_SECRET`, in the webhook URL sent to RunPod.",
    auto_error=False,
)

StoreUp = Depends(require_store)
Mutating = [Depends(require_api_token), Depends(bearer_scheme)]
StyleId = Annotated[str, Path(pattern=STYLE_ID_PATTERN, description="positive integer, no leading zeros")]
VersionName = Annotated[str, Path(max_length=12, description="V<n>, case-insensitive")]


def style_of(text: str) -> int:
    try:
        return parse_style_id(text)
    except NameRejected as rejected:
        raise HTTPException(422, rejected.reason) from None


def version_of(text: str) -> str:
    try:
        return parse_version_name(text)
    except NameRejected as rejected:
        raise HTTPException(422, rejected.reason) from None


def _webhook_token(query_string: bytes) -> str | None:
    """The `token` query parameter, spelled exactly so and given once (the URL we send RunPod).

    Any other spelling of the name (`tok%65n`, `TOKEN`, after a `;`) or a second `token` makes
    the request ambiguous: it is refused as having no token, instead of guessing which one counts.
    """
    found: list[str] = []
    for pair in query_string.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name == "token":
            found.append(unquote_plus(value))
        elif any(
            unquote_plus(piece.partition("=")[0]).strip().casefold() == "token" for piece in pair.split(";")
        ):
            return None
    return found[0] if len(found) == 1 else None


# --------------------------------------------------------------------------- bodies


class StartTraining(BaseModel):
    version_name: str | None = Field(default=None, max_length=12, examples=["V9"])
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=10_000)
    input: dict[str, Any] = Field(default_factory=dict, description="extra RunPod input, passed through")
    fields: dict[str, Any] = Field(
        default_factory=dict, description="extra entry fields, e.g. selectionSetId"
    )


class SyncRequest(BaseModel):
    # A JSON integer only: lax parsing would read "1_0" as 10, and "+1", " 1 ", true or 1.0 as 1.
    style_id: StrictInt | None = Field(default=None, ge=1, le=999_999_999)
    actor_id: StrictInt | None = Field(default=None, ge=0, le=999_999_999)  # CONTRACT §8


# --------------------------------------------------------------------------- routes

router = APIRouter(dependencies=[StoreUp])
health_router = APIRouter()


@router.post(
    "/styles/{style_id}/trainings",
    status_code=201,
    dependencies=Mutating,
    operation_id="startTraining",
    response_model=VersionEntry,
    response_model_exclude_unset=True,
    responses=error_responses(400, 401, 408, 409, 413, 422, 502, 503),
)
def start_training(style_id: StyleId, body: StartTraining, service: ServiceDep) -> dict[str, Any]:
    style = style_of(style_id)
    name = version_of(body.version_name) if body.version_name is not None else None
    return service.start(
        style,
        name,
        parameters=body.parameters,
        description=body.description,
        extra_input=body.input,
        fields=body.fields,
    )


@router.post(
    "/webhooks/runpod",
    dependencies=[Depends(webhook_token_scheme)],
    operation_id="receiveRunpodWebhook",
    response_model=WebhookAnswer,
    response_model_exclude_unset=True,
    responses=WEBHOOK_RESPONSES,
)
async def runpod_webhook(
    request: Request,
    response: Response,
    service: ServiceDep,
    token: Annotated[str, Query(max_length=512)] = "",
) -> dict[str, Any]:
    try:
        payload = await _webhook_payload(request, service)
    except HTTPException as refused:
        if refused.status_code != 503:  # a 503 is ours (not set up): RunPod sends it again
            record_webhook("rejected")
        raise
    result = await run_in_threadpool(service.receive_job_payload, payload)
    record_webhook(result.result)
    response.status_code = 202 if result.result == "unmatched" else 200
    return webhook_json(result)


async def _webhook_payload(request: Request, service: Service) -> JobPayload:
    # `token` documents the parameter; the check reads the raw query, which sees every spelling.
    secret = service.settings.webhook_secret
    if secret is None:
        raise HTTPException(503, "webhooks are refused: LORALEDGER_WEBHOOK_SECRET is not set")
    given = _webhook_token(request.scope.get("query_string", b""))
    if given is None or not secrets.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong webhook token (it goes once, as ?token=)")
    body = await _read_limited(request, service.settings.webhook_max_bytes)
    try:
        return JobPayload.model_validate_json(body)
    except ValidationError as error:
        raise HTTPException(422, f"not a RunPod job payload: {_first_error(error)}") from None


@router.post(
    "/sync/s3",
    dependencies=Mutating,
    operation_id="syncS3",
    response_model=SyncReport,
    response_model_exclude_unset=True,
    responses=error_responses(400, 401, 408, 413, 422, 502, 503),
)
def sync_s3(service: ServiceDep, body: Annotated[SyncRequest | None, Body()] = None) -> dict[str, Any]:
    if body is not None and body.style_id is not None and body.actor_id is not None:
        raise HTTPException(422, "give style_id or actor_id, not both: a sync of one subject")
    answer = sync_report_json(
        service.sync(body.style_id if body else None, only_actor=body.actor_id if body else None)
    )
    answer["backups"] = [str(path) for path in service.take_backups()]
    return answer


@router.get(
    "/sync/skipped",
    operation_id="listSkippedFiles",
    response_model=SkippedFiles,
    response_model_exclude_unset=True,
    responses=error_responses(422, 503),
)
def skipped_files(
    service: ServiceDep,
    style_id: Annotated[
        str | None, Query(pattern=STYLE_ID_PATTERN, description="only the files named for this style")
    ] = None,
) -> dict[str, Any]:
    return {"skipped": service.skipped_files(style_of(style_id) if style_id is not None else None)}


# The file's own bytes (a Response, never re-serialised), described by its schema.
@router.get(
    "/styles/{style_id}/training_versions.json",
    operation_id="getTrainingVersions",
    responses={
        200: {"model": TrainingVersionsDocument, "description": "The projection file, as on disk."},
        **error_responses(404, 422, 503),
    },
)
def training_versions(style_id: StyleId, service: ServiceDep) -> Response:
    style = style_of(style_id)
    text = service.document(style)
    if text is None:
        raise HTTPException(404, f"style {style} has no versions")
    return Response(content=text.encode(), media_type="application/json")


@router.get(
    "/styles/{style_id}/versions/{name}/history",
    operation_id="getVersionHistory",
    response_model=VersionHistory,
    response_model_exclude_unset=True,
    responses=error_responses(404, 422, 503),
)
def version_history(style_id: StyleId, name: VersionName, service: ServiceDep) -> Response:
    style, version = style_of(style_id), version_of(name)
    # Answered as built (api/render.py builds the VersionHistory shape; the bytes are those the
    # response model would give): validating a long history against the model again cost more
    # than reading it from the store.
    return JSONResponse(to_jsonable_python(service.history(style, version)))


# The body is read here, not by FastAPI, so that its size is limited while it arrives.
ANNOTATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "fields to set; null clears a field",
                }
            }
        },
    }
}


@router.patch(
    "/styles/{style_id}/versions/{name}",
    dependencies=Mutating,
    openapi_extra=ANNOTATION_BODY,
    operation_id="annotateVersion",
    response_model=VersionEntry,
    response_model_exclude_unset=True,
    responses=error_responses(401, 404, 408, 413, 422, 503),
)
async def annotate_version(
    style_id: StyleId, name: VersionName, request: Request, service: ServiceDep
) -> dict[str, Any]:
    style, version = style_of(style_id), version_of(name)
    fields = _json_object(await _read_limited(request, blobs.MAX_BYTES))
    set_fields = {key: value for key, value in fields.items() if value is not None}
    cleared = [key for key, value in fields.items() if value is None]
    return await run_in_threadpool(service.annotate, style, version, set_fields, cleared)


@router.post(
    "/styles/{style_id}/versions/{name}/cancel",
    dependencies=Mutating,
    operation_id="cancelTraining",
    response_model=VersionEntry,
    response_model_exclude_unset=True,
    responses=error_responses(401, 404, 409, 422, 502, 503),
)
def cancel_training(style_id: StyleId, name: VersionName, service: ServiceDep) -> dict[str, Any]:
    """Ask RunPod to cancel the pending training; the version becomes failed, `error: "cancelled"`."""
    return service.cancel(style_of(style_id), version_of(name))


@router.get(
    "/webhooks/unmatched",
    dependencies=Mutating,
    operation_id="unmatchedWebhooks",
    response_model=UnmatchedDeliveries,
    response_model_exclude_unset=True,
    responses=error_responses(401, 503),
)
def unmatched_webhooks(service: ServiceDep) -> dict[str, Any]:
    """Webhooks parked for jobs no version claims yet, newest first (applied once the job is known)."""
    return {"unmatched": service.unmatched()}


@router.post(
    "/projections/rebuild",
    dependencies=Mutating,
    operation_id="rebuildProjections",
    response_model=RebuildAnswer,
    response_model_exclude_unset=True,
    responses=error_responses(401, 503),
)
def rebuild_projections(service: ServiceDep) -> dict[str, Any]:
    result = service.rebuild()
    return rebuild_json(result, service.take_backups())


@router.post(
    "/reconcile",
    dependencies=Mutating,
    operation_id="reconcile",
    response_model=ReconcileReport,
    response_model_exclude_unset=True,
    responses=error_responses(401, 422, 503),
)
def reconcile(
    service: ServiceDep, older_than: Annotated[str, Query(max_length=32, examples=["15m"])] = "15m"
) -> dict[str, Any]:
    try:
        age = parse_duration(older_than)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return reconcile_report_json(service.reconcile(age))


@health_router.get(
    "/healthz", operation_id="healthz", response_model=HealthAnswer, response_model_exclude_unset=True
)
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Whether it can serve is /readyz's question."""
    return {"status": "ok"}


# --------------------------------------------------------------------------- helpers


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes) -> dict[str, Any]:
    """A body that must be a JSON object; 422 with the reason otherwise."""
    try:
        value = blobs.parse(body)
    except ValueError as error:  # not JSON, not UTF-8, or nested too deep to read
        raise HTTPException(422, f"the body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise HTTPException(422, "the body must be a JSON object of fields")
    return value


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": redact(detail)}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Domain and adapter errors -> the status codes of CONTRACT §4."""
    app.add_exception_handler(VersionConflict, lambda _, e: _error(409, str(e)))
    app.add_exception_handler(UnknownVersion, lambda _, e: _error(404, str(e)))
    app.add_exception_handler(OwnedFieldError, lambda _, e: _error(422, str(e)))
    app.add_exception_handler(NameRejected, lambda _, e: _error(422, str(e)))
    app.add_exception_handler(LedgerError, lambda _, e: _error(409, str(e)))
    app.add_exception_handler(RunPodError, lambda _, e: _error(502, f"RunPod: {e}"))
    app.add_exception_handler(S3ListingError, lambda _, e: _error(502, str(e)))
    app.add_exception_handler(MissingSetting, lambda _, e: _error(503, str(e)))
    app.add_exception_handler(InvalidRunInput, lambda _, e: _error(422, str(e)))
    app.add_exception_handler(InvalidJson, lambda _, e: _error(422, str(e)))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PersistenceError, _store_unavailable)
    app.add_exception_handler(RecursionError, lambda _, e: _error(422, "the body is nested too deeply"))


async def _store_unavailable(_: Request, error: Exception) -> JSONResponse:
    """The event store did not answer (or kept conflicting): nothing was recorded; try again."""
    log.warning("event store error: %s", type(error).__name__)
    return JSONResponse(
        {"detail": "the event store is unavailable; nothing was recorded, try again"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's own 422 echoes the input back, which fails for text that is not valid Unicode."""
    assert isinstance(error, RequestValidationError)
    details = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}
        for item in error.errors()
    ]
    return JSONResponse({"detail": details}, status_code=422)


# --------------------------------------------------------------------------- app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = open_serving_service(settings)
        if settings.webhook_secret is None:
            log.warning("LORALEDGER_WEBHOOK_SECRET is not set: RunPod webhooks will be refused")
        await run_in_threadpool(service.catch_up)
        service.start_writer()
        app.state.service = service
        background = Unattended(service)  # the queue consumer and the schedules, on the leader
        background.start()
        try:
            yield
        finally:
            await run_in_threadpool(background.stop)
            await run_in_threadpool(service.close)
            process_stopped(os.getpid())

    register_secrets(*settings.secret_values())
    # Every log line (uvicorn's access log prints the query) goes out redacted.
    install_log_redaction()
    app = FastAPI(
        title="loraledger",
        summary="Event-sourced record of LoRA training versions.",
        version="0.1.0",
        lifespan=lifespan,
        # Answers are written by json.dumps, as they always were: pydantic's own JSON writer spells
        # some floats differently (1e-05 as 0.00001), and the bytes are part of the contract.
        default_response_class=JSONResponse,
        # One schema per answer model, as validated (see VersionEntry in api/schemas.py).
        separate_input_output_schemas=False,
    )
    from loraledger.api.actor_routes import actor_router  # it builds on this module's guards

    app.include_router(router)
    app.include_router(actor_router)
    app.include_router(health_router)
    app.include_router(operating_router)
    install_pages(app)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        read_timeout=settings.body_read_timeout,
        route_limits={"/webhooks/runpod": settings.webhook_max_bytes},
    )
    app.add_middleware(RequestContext)  # outermost: a refused body's answer has its id too
    return app
