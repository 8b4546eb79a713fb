"""What changed between two entries or two states of a file, as the pages show it."""

from __future__ import annotations

from loraledger.domain.entry_changes import (
    Change,
    FieldChange,
    VersionChange,
    document_changes,
    entry_changes,
)


def test_a_first_entry_shows_every_field_as_added_in_its_order() -> None:
    assert entry_changes(None, {"id": "j1", "name": "V1"}) == [
        FieldChange("id", Change.ADDED, after="j1"),
        FieldChange("name", Change.ADDED, after="V1"),
    ]


def test_changed_and_removed_fields_keep_both_values() -> None:
    before = {"status": "pending", "error": "boom", "isGood": True}
    after = {"status": "completed", "isGood": True}
    assert entry_changes(before, after) == [
        FieldChange("status", Change.CHANGED, "pending", "completed"),
        FieldChange("error", Change.REMOVED, before="boom"),
    ]


def test_true_and_one_differ_as_the_file_writes_them_but_one_and_one_point_zero_do_not() -> None:
    assert entry_changes({"x": 1}, {"x": True}) == [FieldChange("x", Change.CHANGED, 1, True)]
    assert entry_changes({"x": [1]}, {"x": [1.0]}) == []
    assert entry_changes({"p": {"a": 1}}, {"p": {"a": 2}}) == [
        FieldChange("p", Change.CHANGED, {"a": 1}, {"a": 2})
    ]


def test_a_null_value_is_a_value_not_an_absence() -> None:
    assert entry_changes({}, {"x": None}) == [FieldChange("x", Change.ADDED, after=None)]
    assert entry_changes({"x": None}, {}) == [FieldChange("x", Change.REMOVED, before=None)]


def test_a_file_then_and_now_lists_versions_added_changed_and_removed() -> None:
    then = [{"name": "V2", "status": "pending"}, {"name": "V1", "status": "completed"}]
    now = [{"name": "V3", "status": "pending"}, {"name": "V2", "status": "completed"}]
    assert document_changes(then, now) == [
        VersionChange(
            "V3",
            Change.ADDED,
            (
                FieldChange("name", Change.ADDED, after="V3"),
                FieldChange("status", Change.ADDED, after="pending"),
            ),
        ),
        VersionChange("V2", Change.CHANGED, (FieldChange("status", Change.CHANGED, "pending", "completed"),)),
        VersionChange(
            "V1",
            Change.REMOVED,
            (
                FieldChange("name", Change.REMOVED, before="V1"),
                FieldChange("status", Change.REMOVED, before="completed"),
            ),
        ),
    ]


def test_the_same_file_has_no_changes() -> None:
    entries = [{"name": "V1", "status": "completed"}]
    assert document_changes(entries, [dict(e) for e in entries]) == []
