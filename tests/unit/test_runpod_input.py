"""put_at_path and build_run_input: how a training's parameters become RunPod `input`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loraledger.adapters.runpod import DEFAULT_MODEL_NAME_FIELD
from loraledger.adapters.runpod_input import build_run_input, put_at_path

# -- put_at_path ---------------------------------------------------------------------------------


def test_put_at_path_sets_a_top_level_key_and_returns_the_target() -> None:
    target: dict[str, Any] = {"a": 1}

    holder = put_at_path(target, "b", 2)

    assert holder is target
    assert target == {"a": 1, "b": 2}


def test_put_at_path_creates_missing_intermediate_objects() -> None:
    target: dict[str, Any] = {}

    holder = put_at_path(target, "a.b.c", "v")

    assert target == {"a": {"b": {"c": "v"}}}
    assert holder is target["a"]["b"]


def test_put_at_path_keeps_siblings_of_existing_intermediates() -> None:
    target: dict[str, Any] = {"training_config": {"mode": "custom-styles", "model_name": "old"}}

    holder = put_at_path(target, "training_config.model_name", "new")

    assert holder is target["training_config"]
    assert target == {"training_config": {"mode": "custom-styles", "model_name": "new"}}


@pytest.mark.parametrize("intermediate", ["text", 3, None, ["a", "list"]])
def test_put_at_path_rejects_a_non_object_intermediate_and_changes_nothing(
    intermediate: Any,
) -> None:
    target: dict[str, Any] = {"a": {"b": intermediate}}
    before = copy.deepcopy(target)

    with pytest.raises(ValueError, match=r"'a\.b'"):
        put_at_path(target, "a.b.c.d", 1)

    assert target == before


@pytest.mark.parametrize("path", ["", ".", "a.", ".a", "a..b"])
def test_put_at_path_rejects_empty_segments(path: str) -> None:
    target: dict[str, Any] = {}

    with pytest.raises(ValueError, match="empty segment"):
        put_at_path(target, path, 1)

    assert target == {}


# -- build_run_input -----------------------------------------------------------------------------


def test_default_model_name_field_is_training_config_model_name() -> None:
    assert DEFAULT_MODEL_NAME_FIELD == "training_config.model_name"


def test_build_run_input_puts_model_name_and_parameters_in_the_same_object() -> None:
    extra = {
        "training_config": {"mode": "custom-styles", "tenant_id": "actor_maker"},
        "training_data": {"s3_urls": ["s3://b/k.jpg"]},
    }

    run_input = build_run_input(extra, DEFAULT_MODEL_NAME_FIELD, "style_82_vV6", {"learning_rate": 0.0003})

    assert run_input == {
        "training_config": {
            "mode": "custom-styles",
            "tenant_id": "actor_maker",
            "model_name": "style_82_vV6",
            "learning_rate": 0.0003,
        },
        "training_data": {"s3_urls": ["s3://b/k.jpg"]},
    }


def test_build_run_input_creates_the_model_name_path_when_extra_input_is_empty() -> None:
    run_input = build_run_input({}, "job.config.name", "actor_6_V7", {"steps": 10})

    assert run_input == {"job": {"config": {"name": "actor_6_V7", "steps": 10}}}


def test_build_run_input_model_name_wins_over_a_parameter_with_the_same_key() -> None:
    run_input = build_run_input(
        {}, DEFAULT_MODEL_NAME_FIELD, "style_1_v2", {"model_name": "hijack", "rank": 16}
    )

    assert run_input["training_config"] == {"model_name": "style_1_v2", "rank": 16}


def test_build_run_input_model_name_wins_over_extra_input() -> None:
    run_input = build_run_input(
        {"training_config": {"model_name": "stale"}}, DEFAULT_MODEL_NAME_FIELD, "style_1_v2", {}
    )

    assert run_input["training_config"]["model_name"] == "style_1_v2"


def test_build_run_input_parameters_override_extra_input_values_beside_the_model_name() -> None:
    run_input = build_run_input(
        {"training_config": {"learning_rate": 0.1, "mode": "custom-actors"}},
        DEFAULT_MODEL_NAME_FIELD,
        "actor_1_V1",
        {"learning_rate": 0.0003},
    )

    assert run_input["training_config"]["learning_rate"] == 0.0003
    assert run_input["training_config"]["mode"] == "custom-actors"


def test_build_run_input_parameters_are_merged_shallowly() -> None:
    run_input = build_run_input(
        {"training_config": {"optimizer": {"name": "adamw", "beta1": 0.9}}},
        DEFAULT_MODEL_NAME_FIELD,
        "style_1_v2",
        {"optimizer": {"name": "prodigy"}},
    )

    assert run_input["training_config"]["optimizer"] == {"name": "prodigy"}


def test_build_run_input_does_not_modify_or_alias_its_arguments() -> None:
    extra = {"training_config": {"mode": "custom-styles"}, "training_data": {"s3_urls": ["a"]}}
    parameters = {"schedule": {"steps": [1, 2]}}
    extra_before, parameters_before = copy.deepcopy(extra), copy.deepcopy(parameters)

    run_input = build_run_input(extra, DEFAULT_MODEL_NAME_FIELD, "style_1_v2", parameters)
    run_input["training_data"]["s3_urls"].append("b")
    run_input["training_config"]["schedule"]["steps"].append(3)

    assert extra == extra_before
    assert parameters == parameters_before


def test_build_run_input_rejects_a_model_name_field_through_a_non_object() -> None:
    with pytest.raises(ValueError):
        build_run_input({"training_config": "flat"}, DEFAULT_MODEL_NAME_FIELD, "style_1_v2", {})
