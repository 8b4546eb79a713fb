"""Actors' names (CONTRACT §8): their model names, legacy spellings, ids, and why nothing is matched
across subject kinds."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid5

import pytest

from loraledger.domain import policies
from loraledger.domain.errors import VersionConflict
from loraledger.domain.indexes import JobIndex, style_index_id
from loraledger.domain.legacy import plan_document
from loraledger.domain.naming import (
    ModelName,
    NameRejected,
    format_model_name,
    parse_actor_id,
    parse_legacy_name,
    parse_lora_key,
    parse_model_name,
)
from loraledger.domain.subjects import ACTOR, STYLE, Subject, subject_kind
from loraledger.domain.training_version import LEDGER_NAMESPACE, TrainingVersion, version_id


def test_an_actors_model_name_has_no_v_separator() -> None:
    assert format_model_name(6, "V6", ACTOR) == "actor_6_V6"
    assert parse_model_name("actor_6_V6") == ModelName(6, "V6", None, ACTOR)


@pytest.mark.parametrize("spelling", ["actor_0006_V6", "actor_6_v6", "actor_6_vV6", "actor_6_vv6"])
def test_legacy_actor_spellings_read_as_the_same_version_and_say_so(spelling: str) -> None:
    model = parse_model_name(spelling)

    assert (model.kind, model.style_id, model.version_name, model.canonical) == (ACTOR, 6, "V6", "actor_6_V6")
    assert model.normalisation == f"legacy spelling {spelling!r} read as 'actor_6_V6'"


@pytest.mark.parametrize(
    "text",
    ["actor_06_V6", "actor_00006_V6", "actor_6_V06", "actor_6_6", "actor__V6", "actor_6_V0", "actor_-1_V1"],
)
def test_other_actor_spellings_are_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(NameRejected, match="actor"):
        parse_model_name(text)


def test_actor_ids_may_be_zero_but_are_never_padded_or_negative() -> None:
    assert parse_actor_id("0") == 0
    assert parse_actor_id(6) == 6
    for bad in ("0006", "-1", "abc", "", "1234567890"):
        with pytest.raises(NameRejected):
            parse_actor_id(bad)
    with pytest.raises(NameRejected):
        parse_actor_id(True)


def test_an_s3_key_is_read_by_the_prefix_it_was_listed_under() -> None:
    key = "actor_maker_user/custom-actors/models/actor_6_V6.safetensors"
    assert parse_lora_key(key, ACTOR) == ModelName(6, "V6", None, ACTOR)
    with pytest.raises(NameRejected, match="not a style LoRA"):
        parse_lora_key(key, STYLE)
    with pytest.raises(NameRejected, match="not an actor LoRA"):
        parse_lora_key("models/style_6_vV6.safetensors", ACTOR)


def test_style_6_and_actor_6_are_different_versions_indexes_and_names() -> None:
    style = TrainingVersion.register(6, "V6")
    actor = TrainingVersion.register(6, "V6", ACTOR)

    assert style.id != actor.id
    assert (style.model_name, actor.model_name) == ("style_6_vV6", "actor_6_V6")
    assert (style.subject, actor.subject) == (Subject(STYLE, 6), Subject(ACTOR, 6))
    assert style_index_id(6) != style_index_id(6, ACTOR)


def test_a_styles_ids_are_those_recorded_before_actors_existed() -> None:
    assert version_id(1, "V8") == uuid5(LEDGER_NAMESPACE, "training-version/1/V8")
    assert style_index_id(1) == uuid5(LEDGER_NAMESPACE, "style-index/1")


def test_actor_0_is_an_actor_but_style_0_is_not_a_style() -> None:
    assert TrainingVersion.register(0, "V1", ACTOR).model_name == "actor_0_V1"
    with pytest.raises(NameRejected):
        TrainingVersion.register(0, "V1")


def test_a_job_of_an_actor_is_not_taken_by_the_style_with_the_same_number() -> None:
    job = JobIndex.open("job-1-e1")
    job.assign("job-1-e1", 6, "V6", ACTOR)

    with pytest.raises(Exception, match="actor 6 V6"):
        job.assign("job-1-e1", 6, "V6", STYLE)
    assert (job.kind, job.style_id) == (ACTOR, 6)


def test_a_legacy_actor_entry_named_by_model_or_file_name_is_that_version() -> None:
    assert parse_legacy_name("actor_6_V6", 6, ACTOR) == ("V6", "model-name")
    assert parse_legacy_name("actor_0006_V6.safetensors", 6, ACTOR) == ("V6", "file-name")
    with pytest.raises(NameRejected, match="belongs to style 6, not actor 6"):
        parse_legacy_name("style_6_vV6", 6, ACTOR)
    with pytest.raises(NameRejected, match="belongs to actor 7, not actor 6"):
        parse_legacy_name("actor_7_V6", 6, ACTOR)


def test_doctor_checks_an_actors_lora_url_against_its_own_model_name() -> None:
    base = "https://b.s3-accelerate.amazonaws.com/custom-actors/models/"
    entries = [
        {"id": "a-e1", "name": "V2", "status": "completed", "loraUrl": base + "actor_6_V1.safetensors"},
        {"id": "b-e1", "name": "V1", "status": "completed", "loraUrl": base + "actor_6_V1.safetensors"},
    ]

    plan = plan_document(6, entries, ACTOR)

    assert plan.kind == ACTOR
    assert plan.problems == ["entry #1 (V2): loraUrl names actor_6_V1, expected actor_6_V2"]


def test_a_started_actor_version_refuses_a_second_start_naming_the_actor() -> None:
    version = TrainingVersion.register(6, "V1", ACTOR)
    decision = policies.plan_start(6, "V1", None, "r-1", ACTOR)
    version.request_training(
        request_id="r-1",
        requested_at=datetime(2025, 1, 1, tzinfo=UTC),
        parameters={},
        description=None,
        fields={},
        decision=decision,
    )
    with pytest.raises(VersionConflict, match="actor 6 V1 is pending"):
        policies.plan_start(6, "V1", version.facts(), "r-2", ACTOR)


def test_subject_kinds_are_style_and_actor_only() -> None:
    assert subject_kind("actor") == ACTOR
    assert Subject(ACTOR, 6).path == "actor/6"
    with pytest.raises(ValueError, match="not a subject kind"):
        subject_kind("styles")
