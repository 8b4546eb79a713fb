"""Values and readings the use-case tests share: a test clock, reports, files, the rendered entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from loraledger.application.ledger import Ledger
from loraledger.application.start import TrainingRequest
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.projections.runner import read_batches
from loraledger.projections.training_versions import StyleDocuments

PREFIX = "actor_maker_user/custom-styles-models/"
PLAIN = "https://bucket.s3.amazonaws.com/"
ACCEL = "https://bucket.s3-accelerate.amazonaws.com/"
JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
JOB_BASE = "ec487842-b853-4ca1-ba91-76bba6a59006"
PARAMETERS = {"learning_rate": 0.0003, "max_train_steps": 3600}
T0 = datetime(2025, 10, 13, 19, 36, 17, 724000, tzinfo=UTC)


class Clock:
    """A clock the test moves: each reading is the last time set."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> str:
        self.now += timedelta(**delta)
        return iso(self.now)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def document(ledger: Ledger, style_id: int = 1) -> dict[str, Any]:
    documents = StyleDocuments()
    for _, events in read_batches(ledger.store, 0):
        for event in events:
            documents.apply(event)
    text = documents.render(style_id)
    assert text is not None, f"style {style_id} has no document"
    return json.loads(text)  # type: ignore[no-any-return]


def entries(ledger: Ledger, style_id: int = 1) -> list[dict[str, Any]]:
    return document(ledger, style_id)["versions"]  # type: ignore[no-any-return]


def only_entry(ledger: Ledger, name: str, style_id: int = 1) -> dict[str, Any]:
    found = [entry for entry in entries(ledger, style_id) if entry["name"] == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def history_types(ledger: Ledger, name: str, style_id: int = 1) -> list[str]:
    return [type(event).__name__ for event in ledger.queries.history(style_id, name)]


def event_count(ledger: Ledger) -> int:
    return sum(1 for _ in ledger.store.recorder.select_notifications(1, 100_000))


def lora_file(
    name: str = "style_1_vV9", etag: str = '"etag-1"', *, modified: datetime = T0, size: int = 153_288_040
) -> LoraObject:
    return LoraObject(key=f"{PREFIX}{name}.safetensors", etag=etag, size=size, last_modified=modified)


def completed(job_id: str = JOB, *, model: str | None = "style_1_vV9", url: str | None = None) -> JobReport:
    return JobReport(
        job_id=job_id, status="COMPLETED", output_status="success", model_name=model, lora_url=url
    )


def failed(
    job_id: str = JOB, *, status: str = "FAILED", error: str | None = "CUDA out of memory"
) -> JobReport:
    return JobReport(job_id=job_id, status=status, model_name="style_1_vV9", error=error)


def start(ledger: Ledger, name: str = "V9", job_id: str = JOB, **kwargs: Any) -> TrainingRequest:
    kwargs.setdefault("parameters", PARAMETERS)
    request = ledger.start.request(1, name, **kwargs)
    ledger.start.record_start(request, job_id)
    return request
