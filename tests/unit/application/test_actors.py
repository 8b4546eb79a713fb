"""Actors through the use cases (CONTRACT §8): start, webhook, sync and import, each within its own
subject: style 6 and actor 6 never see each other's versions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from loraledger.application.ledger import Ledger, LedgerConfig
from loraledger.domain.legacy import plan_document
from loraledger.domain.observations import JobReport, LoraObject, S3Change
from loraledger.domain.subjects import ACTOR
from loraledger.projections.runner import read_batches
from loraledger.projections.training_versions import StyleDocuments
from tests.unit.application.support import PLAIN, PREFIX, T0, Clock, lora_file

ACTOR_PREFIX = "actor_maker_user/custom-actors/models/"
ACTOR_JOB = "3c274376-7093-4316-9b76-fdcf1210a040-e2"


@pytest.fixture
def ledger(clock: Clock) -> Ledger:
    config = LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX, s3_actor_prefix=ACTOR_PREFIX)
    return Ledger.open({"PERSISTENCE_MODULE": "eventsourcing.popo"}, config=config, clock=clock)


def actor_file(name: str, etag: str = '"a-1"') -> LoraObject:
    return LoraObject(f"{ACTOR_PREFIX}{name}.safetensors", etag, 153_288_040, T0)


def actor_entries(ledger: Ledger, actor_id: int) -> list[dict[str, Any]]:
    documents = StyleDocuments(kind=ACTOR)
    for _, events in read_batches(ledger.store, 0):
        for event in events:
            documents.apply(event)
    text = documents.render(actor_id)
    assert text is not None, f"actor {actor_id} has no document"
    return json.loads(text)["versions"]  # type: ignore[no-any-return]


def test_style_6_and_actor_6_stay_apart_in_one_sync(ledger: Ledger) -> None:
    report = ledger.sync.observe(
        [lora_file("style_6_vV6")], url_base=PLAIN, actor_objects=[actor_file("actor_6_V6")]
    )

    assert (report.scanned, report.created, report.skipped) == (2, 2, [])
    assert (report.styles, report.actors) == ({6}, {6})
    style = ledger.queries.find_version(6, "V6")
    actor = ledger.queries.find_version(6, "V6", ACTOR)
    assert style is not None and actor is not None and style.id != actor.id
    assert (style.entry["id"], actor.entry["id"]) == ("style_6_vV6", "actor_6_V6")
    assert actor.entry["loraUrl"] == f"{PLAIN}{ACTOR_PREFIX}actor_6_V6.safetensors"
    assert [entry["name"] for entry in actor_entries(ledger, 6)] == ["V6"]


def test_a_legacy_actor_file_name_is_read_as_its_version_with_the_normalisation_recorded(
    ledger: Ledger,
) -> None:
    report = ledger.sync.observe([], url_base=PLAIN, actor_objects=[actor_file("actor_0006_V3")])

    (decision,) = report.decisions
    assert decision.notes == ("legacy spelling 'actor_0006_V3' read as 'actor_6_V3'",)
    assert ledger.queries.entry(6, "V3", ACTOR)["id"] == "actor_6_V3"


def test_a_style_file_under_the_actors_prefix_is_skipped_with_the_reason(ledger: Ledger) -> None:
    report = ledger.sync.observe([], url_base=PLAIN, actor_objects=[actor_file("style_6_vV6")])

    assert report.created == 0
    assert report.skipped == [
        {"key": f"{ACTOR_PREFIX}style_6_vV6.safetensors", "reason": report.skipped[0]["reason"]}
    ]
    assert "not an actor LoRA" in report.skipped[0]["reason"]


def test_a_sync_of_one_actor_leaves_the_style_with_its_number_alone(ledger: Ledger) -> None:
    report = ledger.sync.observe(
        [lora_file("style_6_vV6")], url_base=PLAIN, actor_objects=[actor_file("actor_6_V6")], only_actor=6
    )

    assert (report.created, report.styles, report.actors) == (1, set(), {6})
    assert ledger.queries.find_version(6, "V6") is None


def test_an_actor_started_then_reported_then_synced_is_one_completed_entry(
    ledger: Ledger, clock: Clock
) -> None:
    request = ledger.start.request(6, None, parameters={"max_train_steps": 2100}, kind=ACTOR)
    assert (request.version_name, request.model_name) == ("V1", "actor_6_V1")
    ledger.start.record_start(request, ACTOR_JOB)
    clock.now += timedelta(minutes=20)

    result = ledger.reports.apply(
        JobReport(ACTOR_JOB, "COMPLETED", "success", "actor_6_V1", None, None, {"status": "COMPLETED"})
    )
    ledger.sync.observe([lora_file("style_6_vV1")], url_base=PLAIN, actor_objects=[actor_file("actor_6_V1")])

    assert (result.result.value, result.kind, result.style_id) == ("applied", ACTOR, 6)
    (entry,) = actor_entries(ledger, 6)
    assert (entry["id"], entry["status"]) == (ACTOR_JOB, "completed")
    assert entry["loraUrl"] == f"{PLAIN}{ACTOR_PREFIX}actor_6_V1.safetensors"
    assert ledger.queries.entry(6, "V1")["id"] == "style_6_vV1"  # the style's own version


def test_a_webhook_of_an_unknown_actor_job_matches_by_its_model_name(ledger: Ledger) -> None:
    plan = plan_document(6, [{"id": "actor_6_V5", "name": "V5", "status": "pending"}], ACTOR)
    ledger.imports.import_plan(plan, "data/actors/0006_x/training_versions.json")

    result = ledger.reports.apply(
        JobReport("cd7d6654-c0f1-47c8-85a6-64152f1f95db-e1", "FAILED", None, "actor_6_V5", None, "boom", {})
    )

    assert (result.result.value, result.kind, result.version_name) == ("applied", ACTOR, "V5")
    assert ledger.queries.entry(6, "V5", ACTOR)["status"] == "failed"
    assert ledger.queries.find_version(6, "V5") is None


class RunPodForgot:
    """RunPod's /status for a job it no longer knows."""

    def status(self, job_id: str) -> JobReport | None:
        return None


def test_reconcile_fails_an_actors_forgotten_job_and_names_the_actor(ledger: Ledger, clock: Clock) -> None:
    request = ledger.start.request(6, "V2", parameters={}, kind=ACTOR)
    ledger.start.record_start(request, ACTOR_JOB)
    ledger.start.record_start(ledger.start.request(6, "V2", parameters={}), "style-job-e1")  # style 6 V2
    clock.now += timedelta(hours=2)

    report = ledger.reconcile.run(
        [(6, "V2", ACTOR)], RunPodForgot(), older_than=timedelta(minutes=15), grace=timedelta(hours=1)
    )

    assert [(r["actor_id"], r["version"], r["result"]) for r in report.results] == [("6", "V2", "failed")]
    assert ledger.queries.entry(6, "V2", ACTOR)["status"] == "failed"
    assert ledger.queries.entry(6, "V2")["status"] == "pending"  # the style's own attempt is untouched


def test_an_s3_event_under_the_actors_prefix_records_the_actors_file_not_the_styles(
    ledger: Ledger,
) -> None:
    created = ledger.s3_events.take(S3Change("created", actor_file("actor_6_V4"), "00A1"))
    misplaced = ledger.s3_events.take(S3Change("created", actor_file("style_6_vV4"), "00A2"))
    removed = ledger.s3_events.take(S3Change("removed", actor_file("actor_6_V4"), "00B1"))

    assert (created.outcome.value, created.kind, created.style_id) == ("recorded", ACTOR, 6)
    assert misplaced.outcome.value == "skipped" and "not a style" not in misplaced.reason
    assert (removed.outcome.value, removed.kind) == ("recorded", ACTOR)
    assert ledger.queries.find_version(6, "V4") is None
    assert "loraUrl" not in ledger.queries.entry(6, "V4", ACTOR)
