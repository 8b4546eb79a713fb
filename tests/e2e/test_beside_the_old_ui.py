"""loraledger beside the UI that still writes the files (CONTRACT §12), end to end.

The 13 real `training_versions.json` files of the deployment being replaced, in their
`resources/style_images/<id>_<slug>/` tree, a bucket holding their LoRAs, the real server. The
old UI edits, deletes and adds a pending entry (read, change, write back in place, as it does),
while starts, webhooks and syncs arrive. At the end the files hold every change from both sides,
each version's history explains each change, every S3 file no sync took is recorded once with why,
and the tree holds nothing new but JSON files (a new style without its folder included).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.conftest import FILE_FRESHNESS, S3_PREFIX, LedgerServer, ServerFactory

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
STYLE_FILE = re.compile(r"style_(\d+)_(.+)\.json")
UI_JOB_ID = "7e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a7b-u1"
# Files of their bucket that no sync takes: two names that are no LoRA name, and the legacy-spelled
# twin of style 1's V8, whose LoRA came from its training (so the twin is passed over).
PASSED_OVER = {
    S3_PREFIX + "Style_2_VV9.safetensors": "skipped:key-is-not-a-lora-name",
    S3_PREFIX + "style_1_vV13_final.safetensors": "skipped:key-is-not-a-lora-name",
    S3_PREFIX + "style_1_v8.safetensors": "no-match:version-supplied-by-another-file",
}
Versions = list[dict[str, Any]]


def real_tree(root: Path) -> Path:
    """The 13 real files, each in its `<id>_<slug>/` folder."""
    styles = root / "resources" / "style_images"
    for legacy in sorted(LEGACY.glob("style_*.json")):
        match = STYLE_FILE.fullmatch(legacy.name)
        assert match is not None
        folder = styles / f"{match[1]}_{match[2]}"
        folder.mkdir(parents=True)
        (folder / "training_versions.json").write_bytes(legacy.read_bytes())
    return styles


def their_loras(styles: Path) -> set[str]:
    """The S3 keys of the LoRAs the real files point at."""
    keys = set()
    for path in styles.rglob("training_versions.json"):
        for entry in json.loads(path.read_text("utf-8"))["versions"]:
            url = entry.get("loraUrl")
            if isinstance(url, str) and url.endswith(".safetensors"):
                keys.add(S3_PREFIX + urlsplit(url).path.rsplit("/", 1)[-1])
    return keys


def the_file(styles: Path, style_id: int) -> Path:
    (path,) = styles.glob(f"{style_id}_*/training_versions.json")
    return path


def ui_writes(styles: Path, style_id: int, change: Callable[[Versions], None]) -> None:
    """What the old UI does: read the file, change the object, write it back in place."""
    path = the_file(styles, style_id)
    document = json.loads(path.read_text("utf-8"))
    change(document["versions"])
    with open(path, "w", encoding="utf-8") as file:  # truncate and write, as Node's writeFile
        file.write(json.dumps(document, indent=2, ensure_ascii=False))


def named(versions: Versions, name: str) -> dict[str, Any]:
    return next(v for v in versions if v["name"] == name)


def shown(styles: Path, style_id: int) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in json.loads(the_file(styles, style_id).read_text("utf-8"))["versions"]}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `check()` holds (polled); fails after `timeout`."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - began


def file_edits(server: LedgerServer, style_id: int, name: str) -> list[dict[str, Any]]:
    """The version's events decided as edits made to the file (none while it has no history)."""
    response = server.client.get(f"/styles/{style_id}/versions/{name}/history")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    return [e for e in events if (e.get("decision") or {}).get("source") == "file-edit"]


def settled(server: LedgerServer, styles: Path, style_ids: list[int]) -> bool:
    return all(the_file(styles, s).read_bytes() == server.document_bytes(s) for s in style_ids)


def test_the_old_ui_and_the_service_write_the_same_tree_and_nothing_is_lost(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    styles = real_tree(tmp_path / "checkout")
    before = sorted(p.relative_to(styles) for p in styles.rglob("*"))
    server = make_server(
        extra_env={
            "LORALEDGER_OUTPUT_DIR": str(styles),
            "LORALEDGER_OUTPUT_LAYOUT": "{style_id}_*/training_versions.json",
        },
        start=False,
    )
    for key in sorted(their_loras(styles) | set(PASSED_OVER)):
        server.bucket.put(key, b"lora")
    assert server.cli("import", str(styles)).returncode == 0
    server.start()
    assert server.sync()["created"] == 0  # every LoRA in the bucket is a version the files have
    state = server.workdir / "state"
    imported_copies = set(state.rglob("*.bak"))  # the legacy files the import rewrote

    # The UI marks a version good: taken in within 2 s, while the server is otherwise idle.
    ui_writes(styles, 1, lambda versions: named(versions, "V7").update(isGood=True))
    noticed = wait_for(lambda: len(file_edits(server, 1, "V7")) == 1, FILE_FRESHNESS, "the edit taken in")

    # The UI edits and deletes while the service starts a training and its webhook arrives.
    ui_writes(styles, 2, lambda versions: named(versions, "V1").update(description="the portrait set"))
    job_id = server.started_job(2, "V3", parameters={"learning_rate": 0.0002})
    ui_writes(styles, 5, lambda versions: versions.remove(named(versions, "V1")))
    assert server.stub.complete(job_id).status_codes == [200]
    ui_writes(styles, 2, lambda versions: named(versions, "V2").update(isGood=False))

    # The UI starts a training itself and writes the pending entry; RunPod's webhook follows.
    def start_v9(versions: Versions) -> None:
        versions.insert(
            0,
            {
                "id": UI_JOB_ID,
                "name": "V9",
                "description": "started from the UI",
                "timestamp": "2025-10-20T10:00:00.000Z",
                "parameters": {"learning_rate": 0.0003, "max_train_steps": 3600},
                "status": "pending",
                "selectionSetId": 12,
            },
        )

    ui_writes(styles, 1, start_v9)
    server.bucket.put(S3_PREFIX + "style_2_vV3.safetensors", b"lora")
    server.bucket.put(S3_PREFIX + "style_200_vV1.safetensors", b"lora")  # a style with no folder yet
    meanwhile = server.sync()  # a sync arrives meanwhile
    assert [w["style_id"] for w in meanwhile["waiting"]] == [200]  # never written into a bare 200/
    wait_for(lambda: len(file_edits(server, 1, "V9")) == 2, FILE_FRESHNESS, "the UI's start adopted")
    body = {"id": UI_JOB_ID, "status": "COMPLETED", "output": {"status": "success"}}
    assert server.post_webhook(body).status_code == 200
    ui_writes(styles, 1, lambda versions: named(versions, "V9").update(isGood=True))
    server.bucket.put(S3_PREFIX + "style_1_vV9.safetensors", b"lora")
    server.sync()

    wait_for(lambda: settled(server, styles, [1, 2, 5]), 2 * FILE_FRESHNESS, "the files settled")

    # Every change from both sides is in the files.
    one, two, five = shown(styles, 1), shown(styles, 2), shown(styles, 5)
    assert one["V7"]["isGood"] is True
    assert (one["V9"]["status"], one["V9"]["id"], one["V9"]["isGood"]) == ("completed", UI_JOB_ID, True)
    assert one["V9"]["selectionSetId"] == 12 and one["V9"]["loraUrl"].endswith("style_1_vV9.safetensors")
    assert two["V1"]["description"] == "the portrait set" and two["V2"]["isGood"] is False
    assert (two["V3"]["status"], two["V3"]["id"]) == ("completed", job_id)
    assert "V1" not in five and {"V2", "V3"} <= five.keys()

    # The history explains each.
    assert [e["type"] for e in file_edits(server, 1, "V7")] == ["EditedInFile"]
    v9_edits = [e["type"] for e in file_edits(server, 1, "V9")]
    assert v9_edits == ["TrainingRequested", "TrainingStarted", "EditedInFile"]  # started, then marked good
    assert "TrainingCompleted" in [e["type"] for e in server.history(1, "V9")]
    (hidden,) = file_edits(server, 5, "V1")
    assert (
        hidden["type"] == "VisibilityChanged"
        and hidden["decision"]["rule"] == "file-edit:entry-deleted-hidden"
    )
    assert [e["decision"]["rule"] for e in file_edits(server, 2, "V1")] == [
        "file-edit:fields-the-service-does-not-own-taken"
    ]

    # An edit not taken in whole (the UI writing back a status it read before the webhook changed
    # it) was kept in the state folder, and the history names each such copy and why.
    named_copies = {
        event["data"]["backup"]
        for style_id, names in ((1, one), (2, two), (5, {**five, "V1": {}}))
        for name in names
        for event in file_edits(server, style_id, name)
        if event["type"] == "EditedInFile" and event["data"]["refused"]
    }
    assert {str(p) for p in set(state.rglob("*.bak")) - imported_copies} == named_copies

    # Every file no sync took is recorded once, with why, however many syncs saw it; V8's history
    # has its twin; the command line lists the same.
    skipped = server.client.get("/sync/skipped").json()["skipped"]
    assert {s["key"]: s["rule"] for s in skipped} == PASSED_OVER and len(skipped) == len(PASSED_OVER)
    (twin,) = [e for e in server.history(1, "V8") if e["type"] == "LoraSkipped"]
    assert (
        twin["data"]["key"] == S3_PREFIX + "style_1_v8.safetensors"
        and twin["decision"]["source"] == "s3-sync"
    )
    listed = server.cli("skipped", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == {"skipped": skipped}, listed.stderr

    # The deleted version comes back by PATCH, as the contract says.
    assert server.client.patch("/styles/5/versions/V1", json={"hidden": False}).status_code == 200
    wait_for(lambda: "V1" in shown(styles, 5), FILE_FRESHNESS, "style 5 V1 shown again")

    # Nothing new in the tree but the JSON files it already had.
    after = sorted(p.relative_to(styles) for p in styles.rglob("*"))
    assert after == before
    print(
        f"\n[file-edits] an edit while idle was taken in after {noticed:.2f} s (limit {FILE_FRESHNESS} s);"
        f" edits refused in part (stale values written back by the UI): {len(named_copies)}"
    )
