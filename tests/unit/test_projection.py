"""CONTRACT §2: the text of `training_versions.json` as the projection renders it from events."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loraledger.application.ledger import Ledger, LedgerConfig
from loraledger.domain.legacy import plan_document
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.projections.js_json import js_stringify
from loraledger.projections.runner import read_batches
from loraledger.projections.training_versions import StyleDocuments

PREFIX = "models/"
PLAIN = "https://bucket.s3.amazonaws.com/"
ACCEL = "https://bucket.s3-accelerate.amazonaws.com/"
JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
T0 = datetime(2025, 10, 13, 19, 36, 17, 724000, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1, microseconds=1500)
        return self.now


def make_ledger(clock: Callable[[], datetime] | None = None) -> Ledger:
    return Ledger.open(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        config=LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX),
        clock=clock or (lambda: T0),
    )


def documents(ledger: Ledger) -> StyleDocuments:
    docs = StyleDocuments()
    for _, events in read_batches(ledger.store, 0):
        for event in events:
            docs.apply(event)
    return docs


def render(ledger: Ledger, style_id: int = 1) -> str:
    text = documents(ledger).render(style_id)
    assert text is not None
    return text


def versions(ledger: Ledger, style_id: int = 1) -> list[dict[str, Any]]:
    return json.loads(render(ledger, style_id))["versions"]  # type: ignore[no-any-return]


def lora(name: str, etag: str = '"e"', modified: datetime = T0) -> LoraObject:
    return LoraObject(f"{PREFIX}{name}.safetensors", etag, 1024, modified)


def completed(job_id: str = JOB, model: str | None = None, url: str | None = None) -> JobReport:
    return JobReport(
        job_id=job_id, status="COMPLETED", output_status="success", model_name=model, lora_url=url
    )


# -- order of entries -----------------------------------------------------------------------------


def test_render_gives_newest_version_first_by_number() -> None:
    ledger = make_ledger()
    ledger.sync.observe([lora("style_1_vV2"), lora("style_1_vV10"), lora("style_1_vV1")], url_base=PLAIN)
    ledger.start.request(1, "V3", parameters={})

    assert [entry["name"] for entry in versions(ledger)] == ["V10", "V3", "V2", "V1"]


def test_imported_entries_are_rendered_newest_first_whatever_the_file_order() -> None:
    ledger = make_ledger()
    old_order = [
        {"id": "a", "name": "V1", "status": "completed", "loraUrl": PLAIN + "style_1_vV1.safetensors"},
        {"id": "b", "name": "V12", "status": "pending"},
        {"id": "c", "name": "V3", "status": "failed"},
    ]
    ledger.imports.import_plan(plan_document(1, old_order), "a.json")

    assert [entry["name"] for entry in versions(ledger)] == ["V12", "V3", "V1"]


def test_each_style_renders_only_its_own_versions() -> None:
    ledger = make_ledger()
    ledger.sync.observe([lora("style_1_vV1"), lora("style_2_vV5"), lora("style_2_vV4")], url_base=PLAIN)
    docs = documents(ledger)

    assert docs.styles() == [1, 2]
    assert [e["name"] for e in json.loads(docs.render(2) or "")["versions"]] == ["V5", "V4"]
    assert docs.render(3) is None


# -- key order ------------------------------------------------------------------------------------


def test_imported_entry_keeps_its_key_order_and_new_fields_append() -> None:
    ledger = make_ledger()
    legacy = {
        "status": "pending",
        "isGood": False,
        "parameters": {"max_train_steps": 3600, "learning_rate": 0.0003},
        "name": "V3",
        "timestamp": "2025-10-13T19:36:17.724Z",
        "id": JOB,
    }
    ledger.imports.import_plan(plan_document(1, [legacy]), "a.json")
    assert list(versions(ledger)[0]) == list(legacy)

    ledger.reports.apply(completed())
    ledger.annotations.annotate(1, "V3", {"selectionSetId": "set-1", "isGood": True}, [])
    ledger.sync.observe([lora("style_1_vV3")], url_base=ACCEL)

    entry = versions(ledger)[0]
    assert list(entry) == [
        "status",
        "isGood",
        "parameters",
        "name",
        "timestamp",
        "id",
        "loraUrl",
        "completedAt",
        "selectionSetId",
        "lastSynced",
    ]
    assert list(entry["parameters"]) == ["max_train_steps", "learning_rate"]
    assert (entry["status"], entry["isGood"]) == ("completed", True)


def test_imported_entry_with_a_file_name_keeps_its_place_under_the_clean_name() -> None:
    ledger = make_ledger()
    legacy = {
        "description": "Synced from S3",
        "name": "style_1_vV4.safetensors",
        "id": "style_1_vV4",
        "status": "completed",
    }
    ledger.imports.import_plan(plan_document(1, [legacy]), "a.json")

    assert versions(ledger) == [dict(legacy, name="V4")]
    assert list(versions(ledger)[0]) == ["description", "name", "id", "status"]


def test_new_entry_uses_the_contract_key_order_with_other_fields_after() -> None:
    ledger = make_ledger()
    request = ledger.start.request(
        1,
        "V8",
        parameters={"learning_rate": 0.0003},
        description="more steps",
        fields={"selectionSetId": "s"},
    )
    ledger.annotations.annotate(1, "V8", {"isGood": True}, [])
    ledger.start.record_start(request, JOB)
    ledger.reports.apply(completed())
    ledger.sync.observe([lora("style_1_vV8")], url_base=ACCEL)

    assert list(versions(ledger)[0]) == [
        "id",
        "name",
        "description",
        "timestamp",
        "parameters",
        "status",
        "loraUrl",
        "completedAt",
        "lastSynced",
        "selectionSetId",
        "isGood",
    ]


def test_failed_entry_uses_the_contract_key_order() -> None:
    ledger = make_ledger()
    request = ledger.start.request(1, "V2", parameters={})
    ledger.start.record_failure(request, "RunPod unreachable")

    assert list(versions(ledger)[0]) == [
        "id",
        "name",
        "timestamp",
        "parameters",
        "status",
        "error",
        "failedAt",
    ]


def test_entry_created_from_s3_is_rendered_exactly() -> None:
    ledger = make_ledger()
    ledger.sync.observe(
        [lora("style_82_vV6", modified=datetime(2025, 10, 14, 5, 0, 0, 999999, tzinfo=UTC))], url_base=PLAIN
    )

    assert render(ledger, 82) == (
        "{\n"
        '  "versions": [\n'
        "    {\n"
        '      "id": "style_82_vV6",\n'
        '      "name": "V6",\n'
        '      "description": "Synced from S3",\n'
        '      "timestamp": "2025-10-14T05:00:00.999Z",\n'
        '      "parameters": {},\n'
        '      "status": "completed",\n'
        '      "loraUrl": "https://bucket.s3.amazonaws.com/models/style_82_vV6.safetensors",\n'
        '      "lastSynced": "2025-10-13T19:36:17.724Z"\n'
        "    }\n"
        "  ]\n"
        "}"
    )


# -- text form ------------------------------------------------------------------------------------


def test_rendered_text_has_no_trailing_newline_and_keeps_non_ascii() -> None:
    ledger = make_ledger()
    ledger.start.request(1, "V1", parameters={"prompt": "café ☕ 日本"}, description="naïve")
    text = render(ledger)

    assert not text.endswith("\n")
    assert text.endswith("\n  ]\n}")
    assert '"prompt": "café ☕ 日本"' in text
    assert '"description": "naïve"' in text


def test_js_stringify_has_no_trailing_newline() -> None:
    assert js_stringify({"versions": []}) == '{\n  "versions": []\n}'
    assert js_stringify({"a": [1, {"b": 2.0}]}) == '{\n  "a": [\n    1,\n    {\n      "b": 2\n    }\n  ]\n}'


# -- determinism ----------------------------------------------------------------------------------


def _feed(ledger: Ledger) -> None:
    """A history touching every kind of event, in two styles."""
    ledger.imports.import_plan(
        plan_document(
            1,
            [
                {
                    "id": "style_1_vV8",
                    "name": "style_1_vV8.safetensors",
                    "status": "completed",
                    "loraUrl": PLAIN + PREFIX + "style_1_vV8.safetensors",
                    "description": "Synced from S3",
                },
                {"id": JOB, "name": "V8", "status": "pending", "parameters": {"learning_rate": 0.0003}},
                {"id": "old", "name": "V2", "status": "failed", "error": "x", "imageCount": 3},
            ],
        ),
        "styles/1_ink/training_versions.json",
    )
    request = ledger.start.request(1, None, parameters={"max_train_steps": 3600}, description="ü")
    ledger.start.record_start(request, "job-9-e1")
    ledger.reports.apply(
        completed("job-9-e1", url="https://s3-accelerate.amazonaws.com/bucket/models/style_1_vV9.safetensors")
    )
    ledger.reports.apply(completed("job-9-e1"))
    failing = ledger.start.request(1, "V10", parameters={})
    ledger.start.record_failure(failing, "RunPod refused")
    ledger.annotations.annotate(1, "V8", {"isGood": True}, [])
    ledger.sync.observe(
        [
            lora("style_1_vV8"),
            lora("style_1_vV9"),
            lora("style_1_v11"),
            lora("style_5_vV1"),
            lora("bad name"),
        ],
        url_base=ACCEL,
    )
    ledger.reports.apply(JobReport(job_id="late", status="FAILED", model_name="style_5_vV1"))


def test_same_history_gives_the_same_bytes() -> None:
    first, second = make_ledger(Clock()), make_ledger(Clock())
    _feed(first)
    _feed(second)

    for style_id in (1, 5):
        assert render(first, style_id).encode() == render(second, style_id).encode()
    assert [e["name"] for e in versions(first)] == ["V11", "V10", "V9", "V8", "V2"]


@pytest.mark.parametrize("style_id", [1, 5])
def test_render_is_stable_when_read_twice(style_id: int) -> None:
    ledger = make_ledger(Clock())
    _feed(ledger)

    assert render(ledger, style_id) == render(ledger, style_id)


# -- a server's renders: entry texts kept between events -----------------------------------------


def test_kept_entry_texts_render_what_a_whole_render_gives_as_versions_change() -> None:
    ledger = make_ledger()
    kept, whole = StyleDocuments(keep_texts=True), StyleDocuments()
    read = [0]  # how far the log was folded

    def fold_and_compare() -> None:
        for last, events in read_batches(ledger.store, read[0]):
            for event in events:
                kept.apply(event)
                whole.apply(event)
            read[0] = last
        text = kept.render(1)
        assert text == whole.render(1)
        assert text == js_stringify(json.loads(text or "null"))

    request = ledger.start.request(1, "V9", parameters={"lr": 1e-05, "steps": [1, 2]}, fields={"0": "x"})
    fold_and_compare()
    ledger.start.record_start(request, JOB)
    ledger.sync.observe([lora("style_1_vV2"), lora("style_1_vV10")], url_base=PLAIN)
    fold_and_compare()
    ledger.reports.apply(completed(model="style_1_vV9"))
    ledger.annotations.annotate(1, "V2", {"note": "kept", "nested": {"a": [1, {"b": None}]}}, [])
    fold_and_compare()
    ledger.annotations.annotate(1, "V2", {}, ["note"])
    fold_and_compare()
    assert StyleDocuments(keep_texts=True).render(1) is None
