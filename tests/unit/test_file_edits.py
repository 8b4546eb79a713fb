"""The rule that decides an edit someone else made to a file (domain/file_edits.py): pure values."""

from __future__ import annotations

from typing import Any

import pytest

from loraledger.domain.decisions import Rule
from loraledger.domain.entries import Status
from loraledger.domain.file_edits import KnownVersion, judge_owned_field, plan_file_edit
from loraledger.domain.matching import VersionFacts

URL = "https://bucket/prefix/style_1_vV2.safetensors"


def entry(name: str, status: str = "completed", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": f"job-{name}", "name": name, "status": status, "parameters": {}}
    if status == "completed":
        base["loraUrl"] = URL
    return {**base, **fields}


def known(*entries: dict[str, Any], hidden: tuple[str, ...] = ()) -> dict[str, KnownVersion]:
    return {
        e["name"]: KnownVersion(
            VersionFacts(e["name"], e["id"], Status(e["status"]), e.get("loraUrl"), (e["id"],)),
            e,
            e["name"] in hidden,
        )
        for e in entries
    }


def test_a_changed_field_the_service_does_not_own_is_an_annotation() -> None:
    base = [entry("V2"), entry("V1", isGood=False)]
    edited = [entry("V2"), entry("V1", isGood=True, description="kept")]
    plan = plan_file_edit(1, "f", base, edited, known(*base))
    (edit,) = plan.edits
    assert (edit.name, edit.set_fields, edit.cleared, edit.refused) == (
        "V1",
        {"isGood": True, "description": "kept"},
        [],
        {},
    )
    assert edit.decision.source == "file-edit" and edit.decision.rule == Rule.FILE_ANNOTATED
    assert not plan.refused


def test_a_removed_user_field_is_cleared_and_an_unchanged_file_plans_nothing() -> None:
    base = [entry("V1", isGood=True)]
    assert plan_file_edit(1, "f", base, base, known(*base)).empty
    (edit,) = plan_file_edit(1, "f", base, [entry("V1")], known(*base)).edits
    assert edit.cleared == ["isGood"]


def test_a_deleted_entry_hides_its_version_but_only_when_the_base_is_known() -> None:
    base = [entry("V2"), entry("V1")]
    plan = plan_file_edit(1, "f", base, [entry("V2")], known(*base))
    assert [(h.name, h.decision.rule) for h in plan.hides] == [("V1", Rule.FILE_DELETED)]
    assert plan_file_edit(1, "f", None, [entry("V2")], known(*base)).hides == []


def test_a_new_pending_entry_with_a_job_id_is_a_started_training_and_others_are_recorded() -> None:
    base = [entry("V1")]
    started = entry("V3", "pending", id="abc-123-u1", selectionSetId=4)
    plan = plan_file_edit(1, "f", base, [started, entry("V2"), *base], known(*base))
    by_name = {n.name: n for n in plan.new_entries}
    assert by_name["V3"].start is not None and by_name["V3"].start.job_id == "abc-123-u1"
    assert by_name["V3"].start.fields == {"selectionSetId": 4}
    assert by_name["V3"].decision.rule == Rule.FILE_STARTED
    assert by_name["V2"].start is None and by_name["V2"].decision.rule == Rule.FILE_ADDED


def test_a_pending_entry_whose_id_is_the_model_name_is_no_started_training() -> None:
    plan = plan_file_edit(1, "f", [], [entry("V3", "pending", id="style_1_vV3")], {})
    assert plan.new_entries[0].start is None


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("status", "failed", "a completed LoRA is never overwritten"),
        ("loraUrl", "https://elsewhere/x.safetensors", "a completed LoRA is never overwritten"),
        ("id", "another-job", "the id is the current attempt's RunPod job id, as recorded"),
        ("completedAt", "2020-01-01T00:00:00.000Z", "times are recorded by the service as things happen"),
        ("parameters", {"steps": 1}, "the parameters are those the training was started with"),
    ],
)
def test_an_owned_field_of_a_completed_version_is_refused_with_the_reason(
    key: str, value: Any, why: str
) -> None:
    base = [entry("V2")]
    (edit,) = plan_file_edit(1, "f", base, [{**base[0], key: value}], known(*base)).edits
    assert edit.refused[key]["why"] == why
    assert edit.refused[key]["file"] == value and edit.refused[key]["kept"] == base[0].get(key)
    assert edit.decision.rule == Rule.FILE_OWNED_REFUSED


def test_a_pending_version_marked_failed_is_kept_as_its_failure_with_the_files_error() -> None:
    base = [entry("V1", "pending")]
    edited = [{**base[0], "status": "failed", "error": "stopped", "failedAt": "2025-01-01T00:00:00.000Z"}]
    (edit,) = plan_file_edit(1, "f", base, edited, known(*base)).edits
    assert (edit.fail, edit.refused, edit.decision.rule) == ("stopped", {}, Rule.FILE_MARKED_FAILED)


def test_a_failed_version_started_again_in_the_file_is_adopted_only_with_a_new_job_id() -> None:
    base = [entry("V1", "failed")]
    again = [{**base[0], "status": "pending", "id": "new-job-u2", "timestamp": "2025-01-02T00:00:00.000Z"}]
    (edit,) = plan_file_edit(1, "f", base, again, known(*base)).edits
    assert edit.start is not None and edit.start.job_id == "new-job-u2" and edit.refused == {}
    same = [{**base[0], "status": "pending"}]
    (refused,) = plan_file_edit(1, "f", base, same, known(*base)).edits
    assert refused.start is None and "status" in refused.refused


def test_a_hidden_version_back_in_the_file_is_shown_again() -> None:
    base = [entry("V2")]
    hidden = entry("V1")
    (edit,) = plan_file_edit(1, "f", base, [*base, hidden], known(*base, hidden, hidden=("V1",))).edits
    assert edit.show and edit.decision.rule == Rule.FILE_ENTRY_BACK


def test_entries_without_a_usable_name_are_reported_and_make_the_edit_refused() -> None:
    plan = plan_file_edit(1, "f", [], [{"name": "latest"}, "text", entry("V1"), entry("V1")], {})
    assert len(plan.unusable) == 3 and plan.refused
    assert [n.name for n in plan.new_entries] == ["V1"]


def test_the_rule_keeps_only_a_failure_of_a_pending_training_among_status_changes() -> None:
    pending = known(entry("V1", "pending"))["V1"]
    assert judge_owned_field(1, "V1", "status", "failed", pending, {})[0] is True
    assert judge_owned_field(1, "V1", "status", "completed", pending, {})[0] is False
