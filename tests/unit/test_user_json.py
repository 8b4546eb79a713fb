"""User JSON: the one check every way in goes through (PATCH, start, webhooks, legacy files), and
reading back values that older code stored without it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loraledger.domain import blobs
from loraledger.domain.blobs import MAX_BYTES, MAX_DEPTH, STORED_MAX_DEPTH, InvalidJson


def nested_text(levels: int, opener: str = "[", closer: str = "]", inner: str = "1") -> str:
    return opener * levels + inner + closer * levels


def depth_of(value: Any) -> int:
    """How many containers deep `value` goes (iteratively: the values under test may be deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


# --------------------------------------------------------------------------- the check


@pytest.mark.parametrize("key", ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"])
def test_keys_a_javascript_reader_takes_for_object_members_are_refused_at_any_depth(key: str) -> None:
    for value in ({key: 1}, {"a": [{"b": {key: {}}}]}, {"parameters": {"x": [1, {key: "y"}]}}):
        with pytest.raises(InvalidJson, match=f"key '{key}'"):
            blobs.check(value, "fields")


def test_keys_that_only_resemble_object_members_are_accepted() -> None:
    blobs.check({"proto": 1, "my_constructor": 2, "Prototype": 3, "tostring": 4, "__proto": 5}, "fields")


def test_values_nested_up_to_the_limit_are_accepted_and_deeper_ones_refused_without_recursing() -> None:
    blobs.check(json.loads(nested_text(MAX_DEPTH)), "fields")
    for levels in (MAX_DEPTH + 1, 500, 900):
        with pytest.raises(InvalidJson, match=f"nested deeper than {MAX_DEPTH} levels"):
            blobs.check(json.loads(nested_text(levels)), "fields")


def test_values_larger_than_the_limit_are_refused() -> None:
    blobs.check({"a": "x" * (MAX_BYTES - 100)}, "fields")
    with pytest.raises(InvalidJson, match=f"larger than {MAX_BYTES} bytes"):
        blobs.check({"a": "x" * MAX_BYTES}, "fields")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": float("nan")}, "NaN is not a JSON number"),
        ({"a": float("-inf")}, "too large for JSON"),
        ({"a": json.loads("1e400")}, "too large for JSON"),
        ({"a": "\ud800"}, "unpaired surrogate"),
        ({"\udc00": 1}, "unpaired surrogate"),
        ({"a": {1, 2}}, "not a JSON value"),
    ],
)
def test_what_json_text_cannot_carry_is_refused_with_the_reason(value: Any, reason: str) -> None:
    with pytest.raises(InvalidJson, match=reason):
        blobs.check(value, "fields")


@pytest.mark.parametrize("description", [5, None, ["a"], {"text": "a"}, True])
def test_entry_fields_refuse_a_description_that_is_not_text(description: object) -> None:
    with pytest.raises(InvalidJson, match="description"):
        blobs.check_fields({"description": description}, "fields")


def test_entry_fields_accept_a_text_description_or_none_at_all() -> None:
    blobs.check_fields({"description": "more steps", "isGood": True}, "fields")
    blobs.check_fields({"isGood": True}, "fields")


# --------------------------------------------------------------------------- reading back


def test_a_stored_value_nested_deeper_than_the_read_limit_keeps_its_deep_part_as_json_text() -> None:
    deep = nested_text(500, '{"a":', "}")
    text = blobs.dump({"name": "V1", "parameters": {"x": "__X__"}, "after": [1, "]"]}).replace(
        '"__X__"', deep
    )

    assert blobs.too_deep(text)
    value = blobs.load(text)

    assert depth_of(value) == STORED_MAX_DEPTH  # below that, the rest is one text
    assert value["name"] == "V1" and value["after"] == [1, "]"]
    part: Any = value
    for key in ("parameters", "x"):
        part = part[key]
    kept = []
    while isinstance(part, dict):
        kept.append("a")
        part = part["a"]
    assert isinstance(part, str)
    # Nothing is lost: the levels kept as JSON plus the text hold the stored value exactly.
    assert '{"a":' * len(kept) + part + "}" * len(kept) == deep


def test_a_stored_value_thousands_of_levels_deep_is_read_without_recursing() -> None:
    text = nested_text(20_000)

    value = blobs.load(text)

    assert depth_of(value) == STORED_MAX_DEPTH


@pytest.mark.parametrize(
    "value",
    [
        {"a": "[[[[{{{{" * 40, "b": '\\"[{'},
        {"parameters": json.loads(nested_text(MAX_DEPTH, '{"k":', "}"))},
        [[[{"a": ["]", "}", '"']}]]],
        {"text": "héllo \u2028 \U0001f600", "n": 1.5e-7},
    ],
)
def test_values_any_current_path_can_store_read_back_exactly(value: Any) -> None:
    text = blobs.dump(value)

    assert not blobs.too_deep(text)
    assert blobs.load(text) == value
