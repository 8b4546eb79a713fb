"""Legacy documents that must be refused whole, with the entry and the reason, before anything is
recorded: what a JavaScript reader would choke on, what JSON text cannot carry, nesting that
breaks readers, and two versions claiming one RunPod job."""

from __future__ import annotations

import json

import pytest

from loraledger.domain.legacy import LegacyDocumentError, parse_document, plan_document

JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"


def plan_text(text: str, style_id: int = 1) -> None:
    plan_document(style_id, parse_document(text))


def document_with(entry_text: str) -> str:
    good = json.dumps({"id": "a", "name": "V2", "status": "failed"})
    return '{"versions": [' + good + ", " + entry_text + "]}"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('{"id": "x", "name": "V1", "status": "pending", "__proto__": {"isAdmin": true}}', "'__proto__'"),
        (
            '{"id": "x", "name": "V1", "status": "pending", "parameters": {"a": {"constructor": 1}}}',
            "'constructor'",
        ),
        ('{"id": "x", "name": "V1", "status": "pending", "prototype": 1}', "'prototype'"),
        ('{"id": "x", "name": "V1", "status": "pending", "toString": "x"}', "'toString'"),
        ('{"id": "x", "name": "V1", "status": "pending", "description": 5}', "description"),
        ('{"id": "x", "name": "V1", "status": "pending", "description": null}', "description"),
        (
            '{"id": "x", "name": "V1", "status": "pending", "parameters": {"lr": NaN}}',
            "NaN is not a JSON number",
        ),
        ('{"id": "x", "name": "V1", "status": "pending", "parameters": {"lr": 1e400}}', "too large for JSON"),
        (
            '{"id": "x", "name": "V1", "status": "pending", "parameters": {"lr": -Infinity}}',
            "too large for JSON",
        ),
        ('{"id": "x", "name": "V1", "status": "pending", "description": "\\ud800"}', "unpaired surrogate"),
        (
            '{"id": "x", "name": "V1", "status": "pending", "parameters": {"x": '
            + "[" * 500
            + "1"
            + "]" * 500
            + "}}",
            "nested deeper than 32 levels",
        ),
    ],
)
def test_an_entry_json_readers_cannot_take_refuses_the_document_naming_the_entry(
    entry: str, reason: str
) -> None:
    with pytest.raises(LegacyDocumentError) as refused:
        plan_text(document_with(entry))

    assert [problem for problem in refused.value.problems if reason in problem], refused.value.problems
    assert all(problem.startswith("entry #2") for problem in refused.value.problems), refused.value.problems


def test_a_document_nested_too_deep_for_the_json_reader_is_refused_not_a_crash() -> None:
    text = (
        '{"versions": [{"id": "x", "name": "V1", "status": "pending", "p": '
        + "[" * 100_000
        + "]" * 100_000
        + "}]}"
    )

    with pytest.raises(LegacyDocumentError, match="nested"):
        plan_text(text)


def test_two_versions_sharing_a_job_id_refuse_the_document() -> None:
    entries = [
        {"id": JOB, "name": "V1", "status": "completed", "loraUrl": "https://b/style_1_vV1.safetensors"},
        {"id": JOB, "name": "V2", "status": "pending"},
    ]

    with pytest.raises(LegacyDocumentError, match=f"job id {JOB} is on both V2 and V1"):
        plan_document(1, entries)


def test_two_entries_of_one_version_sharing_a_job_id_are_merged_not_refused() -> None:
    entries = [{"id": JOB, "name": "V1", "status": "pending"}, {"id": JOB, "name": "v1", "status": "pending"}]

    plan = plan_document(1, entries)

    assert [len(group.entries) for group in plan.groups] == [2]
