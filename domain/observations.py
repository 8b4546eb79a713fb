"""What the outside world tells the ledger, as plain values.

Adapters build these from S3 listings, RunPod webhooks and `/status` answers; the ledger's
commands take them. They carry no behaviour beyond simple derived facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class LoraObject:
    """One object of an S3 listing (only what the matching rules and the audit need)."""

    key: str
    etag: str
    size: int
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class S3Change:
    """One record of an S3 event notification: a LoRA object created or removed.

    `sequencer` orders the events of one key (S3 delivers them in any order); `lora` is the object
    as the event describes it (for a removal, only its key is meaningful)."""

    kind: Literal["created", "removed"]
    lora: LoraObject
    sequencer: str | None = None


@dataclass(frozen=True, slots=True)
class JobReport:
    """What RunPod said about one job's end, from a webhook or from `GET /status`.

    `status` is RunPod's job status (`COMPLETED`, `FAILED`, ...); `output_status` is the worker's own
    `output.status` when it set one (a worker may catch its error and still end `COMPLETED`).
    `lora_url` is the URL the worker reported, already chosen from `output.loraUrl`,
    `output.s3_url` or `output.model_info.download_url`; `model_name` from
    `input.training_config.model_name` or `output.loraName`.
    """

    job_id: str
    status: str
    output_status: str | None = None
    model_name: str | None = None
    lora_url: str | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
