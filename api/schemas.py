"""The shapes of the HTTP answers (CONTRACT §4, §7), for `/openapi.json` and the clients made from it.

Routes build their answers as plain dicts, in the order the contract shows. These models validate
those dicts and serialise them back unchanged: the same keys in the same order, the same values,
nothing added (a field the dict did not have is not filled in with a default). Describing an answer
therefore never changes its bytes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

from loraledger.domain.decisions import Source


def _documented_shape(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """An absent field is absent, not a default: no `default` shows. Keys beyond the declared
    ones are documented only where an answer really carries them (`open_shape`)."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)
    schema["additionalProperties"] = bool(getattr(model, "open_shape", False))


def absent(description: str | None = None) -> Any:
    """A field an answer may not have (never null): not required, and its placeholder default is
    never written, since routes serialise with `response_model_exclude_unset`."""
    return Field(None, description=description)


class Answer(BaseModel):
    """Base of the answer models: strict validation (no coercion: `true` never becomes 1), fields
    declared in the order the routes build their dicts. Routes serialise with
    `response_model_exclude_unset`, so a key the dict did not have is not added.

    A key the model does not declare is still answered, after the declared ones, rather than
    turning the answer into a 500; the schema does not allow it (unless `open_shape`), so the
    schemathesis run reports the gap."""

    open_shape: ClassVar[bool] = False

    model_config = ConfigDict(
        strict=True,
        extra="allow",
        json_schema_extra=_documented_shape,
        field_title_generator=lambda name, _: name,  # `loraUrl`, not "Loraurl"
    )


# --------------------------------------------------------------------------- errors


class ErrorBody(BaseModel):
    """Every error answer except some 422s: one human-readable sentence."""

    detail: str = Field(examples=["style 1 has no versions"])


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="where in the request: `body`, `query`, `path`, then names")
    msg: str
    type: str


class UnprocessableBody(BaseModel):
    """A 422: a sentence for input the rules refuse (a bad version name, an owned field), or the
    list of problems when the request does not have the declared shape."""

    detail: str | list[ValidationIssue]


# --------------------------------------------------------------------------- decisions


class Candidate(Answer):
    """One version a match considered, and why it was or was not taken."""

    # Decisions are stored inside events: a key a later version of the service adds is shown.
    open_shape = True

    id: str | None = Field(description="the version's current id (job id or model name)")
    name: str
    status: str | None
    taken: bool
    why: str


class Decision(Answer):
    """What a match looked at, which rule fired, and every candidate weighed (CONTRACT §7)."""

    open_shape = True

    source: Source
    rule: str = Field(examples=["job-id:exact"])
    outcome: str
    input: dict[str, Any]
    candidates: list[Candidate]
    notes: list[str]


# --------------------------------------------------------------------------- entries

# An imported entry is kept whole, whatever its legacy file held (CONTRACT §2): its fields are
# not refused for an unexpected type. The schema states what the service itself writes.
_String = Annotated[Any, WithJsonSchema({"type": "string"})]
_Time = Annotated[Any, WithJsonSchema({"type": "string", "examples": ["2025-10-13T19:36:17.724Z"]})]
_Object = Annotated[Any, WithJsonSchema({"type": "object", "additionalProperties": True})]


class VersionEntry(Answer):
    """One entry of `training_versions.json`, in the file's key order. Fields the service does not
    own (`isGood`, `selectionSetId`, anything else) are kept. An entry imported from a legacy file
    keeps its own key order, and its values as that file had them, even of other types than these."""

    open_shape = True
    _keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        entry = handler(data)
        if isinstance(data, dict):
            entry._keys = tuple(data)
        return entry

    # An imported entry keeps its own key order (CONTRACT §2), which no declaration can state:
    # the keys are given back in the order the entry had them. (The return annotation makes
    # pydantic's serialisation-mode schema a bare object, so the app builds its OpenAPI schemas
    # in validation mode: `separate_input_output_schemas=False`.)
    @model_serializer(mode="wrap")
    def _in_entry_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {key: dumped[key] for key in self._keys if key in dumped}

    id: _String = absent("the RunPod job id of the current attempt, or the model name")
    name: str = Field(examples=["V8"])
    description: _String = absent()
    timestamp: _Time = absent("when training was started (UTC, `toISOString()` form)")
    parameters: _Object = absent()
    status: Literal["pending", "completed", "failed"]
    loraUrl: _String = absent()
    completedAt: _Time = absent()
    error: _String = absent()
    failedAt: _Time = absent()
    lastSynced: _Time = absent()


class TrainingVersionsDocument(BaseModel):
    """The projection file, served as the bytes on disk (CONTRACT §2)."""

    versions: list[VersionEntry] = Field(description="one entry per version, newest version first")


# --------------------------------------------------------------------------- answers


class HistoryEvent(Answer):
    type: str = Field(examples=["TrainingCompleted"], description="a past-tense event name")
    at: str = Field(examples=["2025-10-13T20:01:02.000Z"])
    data: dict[str, Any]
    decision: Decision = absent("for an event that came from a match")
    warning: str = absent("when values nested too deep were kept as JSON text")


class VersionHistory(Answer):
    """Every event of one version, oldest first."""

    style_id: int
    version: str = Field(examples=["V8"])
    events: list[HistoryEvent]


# ReportResult.result (domain/ledger.py)
ReportHandled = Literal["applied", "repeat", "ignored", "unmatched", "running"]


class ActorVersionHistory(Answer):  # an actor's version's events, oldest first (CONTRACT §8)
    actor_id: int
    version: str = Field(examples=["V6"])
    events: list[HistoryEvent]


class WebhookAnswer(Answer):
    """How a RunPod job report was handled (202 when the job is unknown and was parked)."""

    result: ReportHandled
    style_id: int | None = Field(description="the style's id; null for an actor's job or none")
    version: str | None
    decisions: list[Decision]
    actor_id: int = absent("the actor's id, when the job is an actor's")


class SkippedKey(Answer):
    key: str = Field(description="the full S3 key")
    reason: str


class SkippedFile(Answer):
    """One S3 file a sync passed over, recorded once per (key, ETag)."""

    key: str = Field(description="the full S3 key")
    etag: str
    reason: str
    rule: str = Field(examples=["no-match:version-supplied-by-another-file"])
    source: str = Field(examples=["s3-sync"])
    style_id: int | None = Field(description="null when the key names no style")
    version: str | None = Field(description="the version the file is named for, when it names one")
    skipped_at: str = Field(examples=["2025-10-14T05:55:19.167Z"])


class SkippedFiles(Answer):
    skipped: list[SkippedFile] = Field(description="oldest first")


class WaitingFile(Answer):
    style_id: int
    reason: str


class SyncReport(Answer):
    scanned: int = Field(description="objects listed under the prefix")
    matched_pending: int
    matched_synced: int
    created: int
    unchanged: int
    skipped: list[SkippedKey]
    decisions: list[Decision]
    waiting: list[WaitingFile] = absent(
        "styles whose file waits for its `{style_id}_*` folder (no LORALEDGER_OUTPUT_FALLBACK)"
    )
    backups: list[str] = Field(description="copies kept of files someone else had changed")


class ReconcileError(Answer):
    style_id: str
    version: str
    job_id: str
    error: str


class ReconcileResult(Answer):
    style_id: str
    version: str
    job_id: str = absent("absent when RunPod never confirmed the request")
    result: str
    rule: str = absent("for versions failed by reconcile itself")


class ReconcileReport(Answer):
    checked: int
    applied: int
    still_running: int
    failed_unknown: int
    waiting: int
    errors: list[ReconcileError]
    results: list[ReconcileResult]


class RebuildAnswer(Answer):
    styles: list[int] = Field(description="styles whose file was written")
    failed: list[int] = Field(description="styles whose file could not be written")
    errors: dict[str, str] = Field(description="style id -> why its file could not be written")
    backups: list[str] = Field(description="copies kept of files someone else had changed")
    actors: list[int] = absent("actors whose file was written")
    failed_actors: list[int] = absent("actors whose file could not be written")
    actor_errors: dict[str, str] = absent("actor id -> why its file could not be written")


class UnmatchedDelivery(Answer):
    """Webhooks parked for one job no version claims yet (CONTRACT §9)."""

    job_id: str
    status: str
    model_name: str | None
    received_at: str = Field(description="when the latest of them arrived (ISO 8601, UTC)")
    deliveries: int = Field(description="how many were parked and not yet applied")


class UnmatchedDeliveries(Answer):
    unmatched: list[UnmatchedDelivery] = Field(description="one item per job, most recent first")


class HealthAnswer(Answer):
    status: Literal["ok", "unavailable"]
    detail: str = absent("why, when unavailable")


# --------------------------------------------------------------------------- documented errors

_BEARER_CHALLENGE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds, when the event store is away", "schema": {"type": "integer"}}
}
_ERRORS: dict[int, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "Missing or wrong bearer token (only when `LORALEDGER_API_TOKEN` is set).",
        "headers": _BEARER_CHALLENGE,
    },
    400: {"model": ErrorBody, "description": "The body is not readable as JSON (e.g. not UTF-8)."},
    404: {"model": ErrorBody, "description": "No such style or version."},
    409: {
        "model": ErrorBody,
        "description": "The version is pending or completed (a completed LoRA is never overwritten), "
        "or the job belongs to another version.",
    },
    408: {"model": ErrorBody, "description": "The body did not arrive within the read deadline."},
    413: {"model": ErrorBody, "description": "The body is larger than the limit."},
    422: {
        "model": UnprocessableBody,
        "description": "Bad input: a malformed style id or version name, an owned field, "
        "or a request that does not have the declared shape.",
    },
    502: {"model": ErrorBody, "description": "RunPod or S3 refused the call or did not answer."},
    503: {
        "model": ErrorBody,
        "description": "The event store is unavailable (nothing was recorded; try again), "
        "or a setting the route needs is missing.",
        "headers": _RETRY_AFTER,
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer these error statuses."""
    return {status: _ERRORS[status] for status in statuses}


WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": WebhookAnswer, "description": "A job the service does not know: recorded as unmatched."},
    401: {"model": ErrorBody, "description": "Missing or wrong webhook token; nothing recorded."},
    **error_responses(408, 413, 422),
    503: {
        "model": ErrorBody,
        "description": "`LORALEDGER_WEBHOOK_SECRET` is not set, or the event store is unavailable.",
        "headers": _RETRY_AFTER,
    },
}
