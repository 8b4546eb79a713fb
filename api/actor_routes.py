"""The actors' routes (CONTRACT §8): `/actors/{actor_id}/…` mirrors every `/styles/{style_id}/…`
route, with the same guards and answers (api/http.py), each calling the same facade method with
the subject kind `actor`. The webhook route and `POST /sync/s3` serve both kinds (api/http.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python

from loraledger.api.dependencies import ServiceDep
from loraledger.api.http import (
    ANNOTATION_BODY,
    Mutating,
    StartTraining,
    StoreUp,
    VersionName,
    _json_object,
    _read_limited,
    version_of,
)
from loraledger.api.schemas import (
    ActorVersionHistory,
    TrainingVersionsDocument,
    VersionEntry,
    error_responses,
)
from loraledger.domain import blobs
from loraledger.domain.naming import NameRejected, parse_actor_id
from loraledger.domain.subjects import ACTOR

ACTOR_ID_PATTERN = r"^(0|[1-9][0-9]{0,8})$"
ActorId = Annotated[
    str, Path(pattern=ACTOR_ID_PATTERN, description="non-negative integer, no leading zeros (not padded)")
]

actor_router = APIRouter(dependencies=[StoreUp])


def actor_of(text: str) -> int:
    try:
        return parse_actor_id(text)
    except NameRejected as rejected:
        raise HTTPException(422, rejected.reason) from None


@actor_router.post(
    "/actors/{actor_id}/trainings",
    status_code=201,
    dependencies=Mutating,
    operation_id="startActorTraining",
    response_model=VersionEntry,
    response_model_exclude_unset=True,
    responses=error_responses(400, 401, 408, 409, 413, 422, 502, 503),
)
def start_actor_training(actor_id: ActorId, body: StartTraining, service: ServiceDep) -> dict[str, Any]:
    actor = actor_of(actor_id)
    name = version_of(body.version_name) if body.version_name is not None else None
    return service.start(
        actor,
        name,
        parameters=body.parameters,
        description=body.description,
        extra_input=body.input,
        fields=body.fields,
        kind=ACTOR,
    )


@actor_router.get(
    "/actors/{actor_id}/training_versions.json",
    operation_id="getActorTrainingVersions",
    responses={
        200: {"model": TrainingVersionsDocument, "description": "The actor's file, as on disk."},
        **error_responses(404, 422, 503),
    },
)
def actor_training_versions(actor_id: ActorId, service: ServiceDep) -> Response:
    actor = actor_of(actor_id)
    text = service.document(actor, ACTOR)
    if text is None:
        raise HTTPException(404, f"actor {actor} has no versions")
    return Response(content=text.encode(), media_type="application/json")


@actor_router.get(
    "/actors/{actor_id}/versions/{name}/history",
    operation_id="getActorVersionHistory",
    response_model=ActorVersionHistory,
    response_model_exclude_unset=True,
    responses=error_responses(404, 422, 503),
)
def actor_version_history(actor_id: ActorId, name: VersionName, service: ServiceDep) -> Response:
    actor, version = actor_of(actor_id), version_of(name)
    return JSONResponse(to_jsonable_python(service.history(actor, version, ACTOR)))


@actor_router.patch(
    "/actors/{actor_id}/versions/{name}",
    dependencies=Mutating,
    openapi_extra=ANNOTATION_BODY,
    operation_id="annotateActorVersion",
    response_model=VersionEntry,
    response_model_exclude_unset=True,
    responses=error_responses(401, 404, 408, 413, 422, 503),
)
async def annotate_actor_version(
    actor_id: ActorId, name: VersionName, request: Request, service: ServiceDep
) -> dict[str, Any]:
    actor, version = actor_of(actor_id), version_of(name)
    fields = _json_object(await _read_limited(request, blobs.MAX_BYTES))
    set_fields = {key: value for key, value in fields.items() if value is not None}
    cleared = [key for key, value in fields.items() if value is None]
    return await run_in_threadpool(service.annotate, actor, version, set_fields, cleared, ACTOR)


@actor_router.post(
    "/actors/{actor_id}/versions/{name}/cancel",
    dependencies=Mutating,
    operation_id="cancelActorTraining",
    response_model=VersionEntry,
    response_model_exclude_unset=True,
    responses=error_responses(401, 404, 409, 422, 502, 503),
)
def cancel_actor_training(actor_id: ActorId, name: VersionName, service: ServiceDep) -> dict[str, Any]:
    """Ask RunPod to cancel the actor's pending training; the version becomes failed, `error: "cancelled"`."""
    return service.cancel(actor_of(actor_id), version_of(name), ACTOR)
