"""Edits someone else made to the files (the old UI), taken in by the next one-shot command
(CONTRACT §12): the service in process on SQLite, a real folder tree, the real file writer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loraledger.adapters.runpod_payloads import JobPayload
from loraledger.api.bootstrap import open_service
from loraledger.api.facade import Service
from loraledger.api.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
LAYOUT = "{style_id}_*/training_versions.json"
UI_JOB_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0-u1"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    styles = tmp_path / "resources" / "style_images"
    folder = styles / "1_ink_intensity"
    folder.mkdir(parents=True)
    (folder / "training_versions.json").write_bytes((FIXTURES / "style_1_ink_intensity.json").read_bytes())
    return styles


@pytest.fixture
def service(tmp_path: Path, tree: Path) -> Iterator[Service]:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        output_dir=str(tree),
        output_layout=LAYOUT,
        state_dir=str(tmp_path / "state"),
        lora_url_base="https://bucket.example/",
    )
    service = open_service(settings)
    service.import_path(tree, None)
    service.catch_up()
    yield service
    service.close()


def the_file(tree: Path) -> Path:
    return tree / "1_ink_intensity" / "training_versions.json"


def entries(tree: Path) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in json.loads(the_file(tree).read_text("utf-8"))["versions"]}


def edit(tree: Path, change: Any) -> None:
    """What the old UI does: read the file, change the object, write it back in place."""
    path = the_file(tree)
    document = json.loads(path.read_text("utf-8"))
    change(document["versions"])
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False), "utf-8")


def by_name(versions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(v for v in versions if v["name"] == name)


def file_edit_events(service: Service, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in service.history(1, name)["events"]
        if (e.get("decision") or {}).get("source") == "file-edit"
    ]


def nothing_but_json(tree: Path) -> list[str]:
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file() and p.suffix != ".json")


def test_fields_the_service_does_not_own_edited_in_the_file_are_kept_and_recorded(
    service: Service, tree: Path
) -> None:
    def toggle(versions: list[dict[str, Any]]) -> None:
        by_name(versions, "V7")["isGood"] = True
        by_name(versions, "V6")["description"] = "retry with fewer steps"
        by_name(versions, "V5")["note"] = "café ✓"

    edit(tree, toggle)
    service.rebuild()  # a one-shot command that writes: it takes the edit in first

    shown = entries(tree)
    assert shown["V7"]["isGood"] is True
    assert shown["V6"]["description"] == "retry with fewer steps"
    assert shown["V5"]["note"] == "café ✓"
    (event,) = file_edit_events(service, "V7")
    assert event["type"] == "EditedInFile"
    assert event["decision"]["rule"] == "file-edit:fields-the-service-does-not-own-taken"
    assert event["data"]["set"] == {"isGood": True}
    assert service.take_backups() == []
    assert nothing_but_json(tree) == []


def test_a_deleted_entry_is_hidden_until_patch_shows_it_again(service: Service, tree: Path) -> None:
    edit(tree, lambda versions: versions.remove(by_name(versions, "V4")))
    service.rebuild()
    assert "V4" not in entries(tree)
    (event,) = file_edit_events(service, "V4")
    assert event["type"] == "VisibilityChanged" and event["data"]["hidden"] is True

    service.annotate(1, "V4", {"hidden": False}, [])

    assert entries(tree)["V4"]["status"] == "failed"
    assert service.history(1, "V4")["events"][-1]["decision"]["rule"] == "patch:hidden-false-shown"


def test_a_pending_entry_the_ui_adds_is_a_started_training_that_its_webhook_completes(
    service: Service, tree: Path
) -> None:
    def start_v9(versions: list[dict[str, Any]]) -> None:
        versions.insert(
            0,
            {
                "id": UI_JOB_ID,
                "name": "V9",
                "description": "started from the UI",
                "timestamp": "2025-10-20T10:00:00.000Z",
                "parameters": {"learning_rate": 0.0002},
                "status": "pending",
                "selectionSetId": 4,
            },
        )

    edit(tree, start_v9)
    service.rebuild()
    assert entries(tree)["V9"]["status"] == "pending"
    assert [e["type"] for e in file_edit_events(service, "V9")] == ["TrainingRequested", "TrainingStarted"]

    result = service.receive_job_payload(JobPayload(id=UI_JOB_ID, status="COMPLETED", output={}))

    assert result.result == "applied"
    v9 = entries(tree)["V9"]
    assert (v9["status"], v9["id"], v9["selectionSetId"]) == ("completed", UI_JOB_ID, 4)
    assert v9["loraUrl"].endswith("style_1_vV9.safetensors")


def test_an_owned_field_changed_in_the_file_is_refused_recorded_and_kept_as_a_backup(
    service: Service, tree: Path, tmp_path: Path
) -> None:
    def downgrade(versions: list[dict[str, Any]]) -> None:
        by_name(versions, "V8")["status"] = "failed"
        by_name(versions, "V8")["isGood"] = False

    edit(tree, downgrade)
    edited = the_file(tree).read_bytes()
    service.rebuild()

    v8 = entries(tree)["V8"]
    assert (v8["status"], v8["isGood"]) == ("completed", False)  # the annotation is kept, the status not
    (event,) = file_edit_events(service, "V8")
    assert event["decision"]["rule"] == "file-edit:owned-field-refused"
    assert event["data"]["refused"]["status"]["why"] == "a completed LoRA is never overwritten"
    (backup,) = service.take_backups()
    assert backup.read_bytes() == edited and backup.is_relative_to(tmp_path / "state")
    assert event["data"]["backup"] == str(backup)
    assert nothing_but_json(tree) == []


def test_a_pending_training_marked_failed_in_the_file_is_kept_as_its_failure(
    service: Service, tree: Path
) -> None:
    def give_up(versions: list[dict[str, Any]]) -> None:
        by_name(versions, "V1")["status"] = "failed"
        by_name(versions, "V1")["error"] = "stopped by hand"

    edit(tree, give_up)
    service.rebuild()

    v1 = entries(tree)["V1"]
    assert (v1["status"], v1["error"]) == ("failed", "stopped by hand")
    assert [e["type"] for e in file_edit_events(service, "V1")] == ["TrainingFailed"]
    assert service.take_backups() == []


def test_the_same_edit_seen_twice_is_taken_in_once(service: Service, tree: Path) -> None:
    edit(tree, lambda versions: by_name(versions, "V3").update(isGood=True))
    service.catch_up()
    service.catch_up()
    service.rebuild()
    assert len(file_edit_events(service, "V3")) == 1
    assert entries(tree)["V3"]["isGood"] is True


def test_an_edit_no_rule_can_take_records_nothing_and_is_kept_as_a_backup(
    service: Service, tree: Path
) -> None:
    before = service.ledger.store.recorder.max_notification_id()
    edit(tree, lambda versions: versions.insert(0, {"name": "V9", "status": "completed", "__proto__": {}}))
    edited = the_file(tree).read_bytes()
    service.rebuild()

    assert "V9" not in entries(tree)  # the ledger's text is back
    assert service.ledger.store.recorder.max_notification_id() == before
    (backup,) = service.take_backups()
    assert backup.read_bytes() == edited


def test_a_file_that_is_not_json_is_kept_as_a_backup_and_written_back(service: Service, tree: Path) -> None:
    written = the_file(tree).read_bytes()
    the_file(tree).write_text('{"versions": [', "utf-8")
    service.rebuild()
    assert the_file(tree).read_bytes() == written
    (backup,) = service.take_backups()
    assert backup.read_text("utf-8") == '{"versions": ['
