"""Stores written by older code keep working: their events read to the same files and histories.

tests/fixtures/stored/ holds the notification log an earlier version of the service recorded (every
event type; see its README). Loaded into a fresh store, the current code must render the same
documents and history JSON byte for byte, and then go on recording on top of those aggregates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from loraledger.adapters.store import prepare_store, store_env, store_exists
from loraledger.api.render import history_json
from loraledger.application.ledger import Ledger, LedgerConfig, LedgerStore
from loraledger.domain.legacy import plan_document
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.projections.runner import read_batches
from loraledger.projections.training_versions import StyleDocuments

STORED = Path(__file__).resolve().parents[1] / "fixtures" / "stored"
PLAIN = "https://bucket.s3.amazonaws.com/"
PREFIX = "models/"
NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
V9_JOB = "ec487842-b853-4ca1-ba91-76bba6a59009-e1"


def stored_records() -> list[dict[str, Any]]:
    lines = (STORED / "v1_notifications.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def expected() -> dict[str, Any]:
    return json.loads((STORED / "v1_expected.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """A fresh store holding exactly the old log."""
    prepare_store(database_url)
    opened = Ledger.open(
        store_env(database_url), config=LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX), clock=lambda: NOW
    )
    opened.store.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"].encode("utf-8"),
            )
            for row in stored_records()
        ]
    )
    yield opened
    opened.close()


def documents(ledger: Ledger) -> dict[str, str | None]:
    folded = StyleDocuments()
    for _, events in read_batches(ledger.store, 0):
        for event in events:
            folded.apply(event)
    return {str(style_id): folded.render(style_id) for style_id in folded.styles()}


def histories(ledger: Ledger, style_ids: list[int]) -> dict[str, Any]:
    return {
        f"{style_id}/{name}": history_json(style_id, name, ledger.queries.history(style_id, name))
        for style_id in style_ids
        for name in ledger.queries.version_names(style_id)
    }


def test_the_fixture_holds_every_topic_the_old_code_recorded() -> None:
    topics = {row["topic"] for row in stored_records()}
    assert topics == set(expected()["topics"])
    assert len(topics) == 19


def test_old_events_render_the_same_documents_and_histories(ledger: Ledger, database_url: str) -> None:
    assert LedgerStore.name == "loraledger"  # the table names (`loraledger_events`) come from it
    assert store_exists(database_url)
    want = expected()

    assert documents(ledger) == want["documents"]
    assert histories(ledger, [1, 2]) == want["histories"]
    # The aggregates (what commands see) agree with the fold.
    assert [v.document_entry() for v in ledger.queries.style_versions(1)] == json.loads(
        want["documents"]["1"]
    )["versions"]


def test_old_aggregates_take_a_webhook_and_a_sync(ledger: Ledger) -> None:
    completed = JobReport(V9_JOB, "COMPLETED", "success", "style_1_vV9", None, None, {})
    result = ledger.reports.apply(completed)
    repeat = ledger.reports.apply(
        JobReport("ec487842-b853-4ca1-ba91-76bba6a59001-e1", "COMPLETED", "success")
    )
    sync = ledger.sync.observe(
        [
            LoraObject(PREFIX + "style_1_vV1.safetensors", '"e1"', 1234, NOW),  # recorded before: unchanged
            LoraObject(PREFIX + "style_1_vV11.safetensors", '"e11"', 1234, NOW),
            LoraObject(PREFIX + "style_2_vV2.safetensors", '"e22"', 1234, NOW),
        ],
        url_base=PLAIN,
    )

    assert (result.result, result.version_name) == ("applied", "V9")
    assert (repeat.result, repeat.version_name) == ("repeat", "V1")
    assert (sync.unchanged, sync.created, sync.matched_pending) == (1, 1, 1)
    v9 = ledger.queries.find_version(1, "V9")
    assert v9 is not None and v9.status == "completed"
    assert v9.lora_url == PLAIN + PREFIX + "style_1_vV9.safetensors"
    assert ledger.queries.version_names(1)[:2] == ["V11", "V10"]
    v2 = ledger.queries.find_version(2, "V2")
    assert v2 is not None and (v2.status, v2.entry.get("imageCount")) == ("completed", 12)
    old = expected()["documents"]
    now = documents(ledger)
    assert now["2"] != old["2"] and now["1"] != old["1"]


# --------------------------------------------------------------------------- writing


class SteppingClock:
    """The fixture script's clock: each reading one second after the last."""

    def __init__(self) -> None:
        self.now = datetime(2025, 10, 13, 19, 36, 17, 724000, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def job(n: int) -> str:
    return f"ec487842-b853-4ca1-ba91-76bba6a5900{n}-e1"


class ForgetfulRunPod:
    """The fixture's /status: V8's job is forgotten, the others ended."""

    def status(self, job_id: str) -> JobReport | None:
        if job_id == job(8):
            return None
        return JobReport(job_id, "COMPLETED", "success", None, None, None, {})


def record_the_fixture_scenario(ledger: Ledger, clock: SteppingClock) -> None:
    """The commands of tests/fixtures/stored/README.md's script, through the current API."""

    def start(name: str, job_id: str, **kwargs: Any) -> None:
        request = ledger.start.request(1, name, parameters={"steps": 10, "lr": 0.0003}, **kwargs)
        ledger.start.record_start(request, job_id)

    def done(job_id: str, model: str | None, url: str | None = None) -> JobReport:
        return JobReport(
            job_id, "COMPLETED", "success", model, url, None, {"status": "COMPLETED", "id": job_id}
        )

    def lora(name: str, etag: str) -> LoraObject:
        return LoraObject(
            PREFIX + name + ".safetensors", etag, 1234, clock.now.replace(hour=19, minute=36, second=17)
        )

    accelerated = "https://bucket.s3-accelerate.amazonaws.com/models/style_1_vV1.safetensors"
    start("V1", job(1), description="first", fields={"selectionSetId": "abc"})
    ledger.reports.apply(done(job(1), "style_1_vV1", accelerated))
    ledger.reports.apply(done(job(1), "style_1_vV1"))
    start("V2", job(2))
    ledger.reports.apply(JobReport(job(2), "FAILED", None, "style_1_vV2", None, "CUDA out of memory", {}))
    start("V2", job(3))
    ledger.reports.apply(JobReport(job(2), "FAILED", None, "style_1_vV2", None, "late", {}))
    refused = ledger.start.request(1, "V3", parameters={})
    ledger.start.record_failure(refused, "RunPod did not start the job: 401")
    ledger.reports.apply(done(job(4), "style_1_vV4"))
    start("V4", job(4))
    start("V6", job(6))
    ledger.sync.observe(
        [lora("style_1_vV5", '"e5"'), lora("style_1_vV1", '"e1"'), lora("style_1_vV6", '"e6"')],
        url_base=PLAIN,
    )
    ledger.start.request(1, "V7", parameters={})
    start("V8", job(8))
    start("V10", job(0))
    clock.now += timedelta(hours=3)
    pending = [(1, v.version_name) for v in ledger.queries.style_versions(1) if v.status == "pending"]
    ledger.reconcile.run(pending, ForgetfulRunPod(), older_than=timedelta(hours=1), grace=timedelta(hours=2))
    start("V9", job(9))
    ledger.annotations.annotate(1, "V1", {"isGood": True, "note": "keep"}, [])
    ledger.annotations.annotate(1, "V1", {}, ["note"])
    legacy: list[dict[str, Any]] = [
        {
            "id": job(5).replace("-e1", "-e2"),
            "name": "V3",
            "status": "completed",
            "parameters": {"a": 1},
            "loraUrl": PLAIN + "models/style_2_vV3.safetensors",
            "timestamp": "2025-01-01T00:00:00.000Z",
        },
        {
            "id": "style_2_vV3",
            "name": "style_2_vV3.safetensors",
            "status": "completed",
            "description": "Synced from S3",
            "loraUrl": PLAIN + "models/style_2_vV3.safetensors",
            "isGood": False,
        },
        {
            "id": "x",
            "name": "V2",
            "status": "failed",
            "error": "boom",
            "timestamp": "2024-12-01T00:00:00.000Z",
        },
    ]
    ledger.imports.import_plan(plan_document(2, legacy), "legacy/style_2.json")
    ledger.imports.import_plan(plan_document(2, legacy), "legacy/style_2.json")
    legacy.append({"id": "y", "name": "v2", "status": "failed", "imageCount": 12})
    ledger.imports.import_plan(plan_document(2, legacy), "legacy/style_2_rev1.json")


TIME = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z|\{\"_type_\":\"datetime_iso\",\"_data_\":\"[^\"]*\"\}"
)


def normalised(records: list[tuple[str, str, int, str]]) -> list[tuple[str, str, int, str]]:
    """Times (the clock's and the library's) and request ids (random) replaced by placeholders."""
    request_ids: dict[str, str] = {}
    answer = []
    for originator, topic, version, state in records:
        text = TIME.sub("<time>", state)
        for found in re.findall(r'"request_id":"([0-9a-f]{32})"', text):
            request_ids.setdefault(found, f"<request {len(request_ids)}>")
        for found, placeholder in request_ids.items():
            text = text.replace(found, placeholder)
        answer.append((originator, topic, version, text))
    return answer


def test_the_same_commands_record_the_same_events() -> None:
    clock = SteppingClock()
    ledger = Ledger.open(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        config=LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX),
        clock=clock,
    )
    record_the_fixture_scenario(ledger, clock)
    recorded = [
        (str(r.originator_id), r.topic, r.originator_version, r.state.decode("utf-8"))
        for r in ledger.store.recorder.select_notifications(1, 1000)
    ]
    old = [(r["originator_id"], r["topic"], r["originator_version"], r["state"]) for r in stored_records()]

    assert normalised(recorded) == normalised(old)
