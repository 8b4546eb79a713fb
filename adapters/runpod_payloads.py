"""RunPod job payloads (webhook bodies and `GET /status` answers) -> `JobReport`.

The same body shape arrives both ways (RunPod posts what `/status` returns, plus `input` and
`webhook`), so one pydantic model reads both. Unknown fields are allowed: workers put anything
in `output`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loraledger.adapters.redaction import redact
from loraledger.domain import blobs
from loraledger.domain.matching import SUCCESS_OUTPUT_STATUSES
from loraledger.domain.observations import JobReport

__all__ = ["JobPayload", "ValidationError", "report_from_payload"]

JOB_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


class JobPayload(BaseModel):
    """The fields loraledger reads from a RunPod job payload; the rest is kept as received."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    status: str = Field(pattern="^(" + "|".join(JOB_STATUSES) + ")$")
    input: dict[str, Any] | None = None
    output: Any = None
    error: Any = None
    delayTime: int | float | None = None  # RunPod's spelling
    executionTime: int | float | None = None


def _text(value: Any, limit: int = 2_000) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else repr(value)
    # Kept on events, so public: a worker's error may quote its input or the webhook URL.
    return redact(text)[:limit]


def _plain(value: Any) -> bool:
    """Only values the audit summary can store as JSON (a worker may send anything)."""
    try:
        blobs.check(value, "summary")
    except blobs.InvalidJson:
        return False
    return True


def report_from_payload(payload: JobPayload) -> JobReport:
    """What the matching rules need, plus a small summary kept on the event for the audit."""
    output: dict[str, Any] = payload.output if isinstance(payload.output, dict) else {}
    info = output.get("model_info")
    model_info: dict[str, Any] = info if isinstance(info, dict) else {}
    training_config = (payload.input or {}).get("training_config")
    model_name = training_config.get("model_name") if isinstance(training_config, dict) else None
    model_name = model_name if isinstance(model_name, str) else None
    if model_name is None and isinstance(output.get("loraName"), str):
        model_name = output["loraName"]
    lora_url = next(
        (
            candidate
            for candidate in (output.get("loraUrl"), output.get("s3_url"), model_info.get("download_url"))
            if isinstance(candidate, str) and candidate.startswith(("https://", "http://"))
        ),
        None,
    )
    output_status = output.get("status")
    error = _text(payload.error) or _text(output.get("error"))
    worker_failed = isinstance(output_status, str) and output_status.lower() not in SUCCESS_OUTPUT_STATUSES
    if error is None and worker_failed:
        error = _text(output.get("message"))
    summary: dict[str, Any] = {
        key: value
        for key, value in {
            "delayTime": payload.delayTime,
            "executionTime": payload.executionTime,
            "message": _text(output.get("message"), 500),
            "size_bytes": model_info.get("size_bytes"),
            "loraName": output.get("loraName") if isinstance(output.get("loraName"), str) else None,
        }.items()
        if value is not None and _plain(value)
    }
    return JobReport(
        job_id=payload.id,
        status=payload.status,
        output_status=output_status if isinstance(output_status, str) else None,
        model_name=model_name,
        lora_url=lora_url,
        error=error,
        summary=summary,
    )
