"""`kill -9` in the middle of a sync and of an import, then the same command again: the files and
the history converge to what one clean run gives, with nothing recorded twice.

* sync: the real server on PostgreSQL is killed while `POST /sync/s3` records a 20k-object bucket
  (50 styles), once the first styles are in the store; restarted on the same store and output
  folder, synced again; compared with a clean `loraledger sync` on a fresh SQLite store.
* import: `loraledger import` of a generated legacy tree (with duplicates to merge) is killed
  twice part-way, then run to the end; compared byte for byte with a clean import.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.helpers import (
    duplicates,
    entry_keys,
    event_count,
    event_type,
    figures,
    per_aggregate,
    read_documents,
    store_rows,
    wait_for,
    without,
)
from tests.support.server import S3_PREFIX, LedgerServer, ServerFactory

SYNC_STYLES = 50
SYNC_VERSIONS_PER_STYLE = 400  # 20,000 objects


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _leftover_temp_files(output_dir: Path) -> list[Path]:
    return sorted(output_dir.rglob(".*.tmp"))


def _history_figures(database_url: str) -> tuple[Counter[str], dict[str, Counter[str]]]:
    rows = store_rows(database_url)
    types = Counter(event_type(topic) for _, _, topic in rows)
    per = {kind: per_aggregate(rows, kind) for kind in ("CreatedFromS3", "Imported")}
    return types, per


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_9_of_the_server_in_the_middle_of_a_sync_then_sync_again_converges(
    make_server: ServerFactory,
) -> None:
    server = make_server(postgres=True)
    keys = [
        f"{S3_PREFIX}style_{style}_vV{n}.safetensors"
        for style in range(1, SYNC_STYLES + 1)
        for n in range(1, SYNC_VERSIONS_PER_STYLE + 1)
    ]
    junk = [
        f"{S3_PREFIX}style_1_vV8 (1).safetensors",
        f"{S3_PREFIX}notes.txt",
        f"{S3_PREFIX}style_01_vV1.safetensors",
    ]
    server.bucket.put_many([*keys, *junk])

    answers: list[object] = []

    def sync_in_background() -> None:
        with httpx.Client(timeout=600) as client:
            try:
                answers.append(client.post(f"{server.base_url}/sync/s3").status_code)
            except httpx.HTTPError as error:
                answers.append(type(error).__name__)

    thread = threading.Thread(target=sync_in_background)
    thread.start()

    # Kill once a few styles are in the store (each style is one transaction) and the server's
    # writer has begun putting their files on disk (or, failing that, a third of the way in).
    def far_enough() -> bool:
        count = event_count(server.database_url)
        written = any(server.output_dir.glob("*/training_versions.json"))
        return count >= (3 if written else SYNC_STYLES // 3) * SYNC_VERSIONS_PER_STYLE

    assert wait_for(far_enough, 120, 0.02)
    server.kill()
    files_at_kill = len(list(server.output_dir.glob("*/training_versions.json")))
    thread.join(timeout=30)
    assert answers and not isinstance(answers[0], int), f"the sync finished before the kill: {answers}"
    created_at_kill = sum(per_aggregate(store_rows(server.database_url), "CreatedFromS3").values())
    assert created_at_kill < len(keys), "killed too late to be a test"
    # One transaction per style: a style is in the store whole, or not at all.
    assert created_at_kill % SYNC_VERSIONS_PER_STYLE == 0, created_at_kill
    styles_at_kill = created_at_kill // SYNC_VERSIONS_PER_STYLE
    for path in server.output_dir.glob("*/training_versions.json"):
        json.loads(path.read_bytes())  # whatever was on disk at the kill is whole
    temp_after_kill = _leftover_temp_files(server.output_dir)

    server.start()
    began = time.monotonic()
    response = server.client.post("/sync/s3", timeout=300)
    assert response.status_code == 200, response.text
    report = response.json()
    resumed_seconds = time.monotonic() - began
    assert report["scanned"] == len(keys) + len(junk)
    assert report["created"] + report["unchanged"] == len(keys)
    assert report["unchanged"] == styles_at_kill * SYNC_VERSIONS_PER_STYLE  # what was recorded is kept
    assert len(report["skipped"]) == len(junk)

    clean = make_server(start=False)  # a fresh SQLite store and output folder; the CLI this time
    began = time.monotonic()
    result = clean.cli("sync", timeout=300)
    clean_seconds = time.monotonic() - began
    assert result.returncode == 0, result.stderr

    assert wait_for(lambda: len(read_documents(server.output_dir)) == SYNC_STYLES, 5)
    resumed, reference = read_documents(server.output_dir), read_documents(clean.output_dir)
    assert duplicates(resumed) == []
    assert entry_keys(resumed) == entry_keys(reference)
    assert len(entry_keys(resumed)) == len(keys)
    assert without(resumed, "lastSynced") == without(reference, "lastSynced")

    types, per = _history_figures(server.database_url)
    clean_types, _ = _history_figures(clean.database_url)
    assert types == clean_types, (types, clean_types)
    assert set(per["CreatedFromS3"].values()) == {1} and len(per["CreatedFromS3"]) == len(keys)
    leftovers = _leftover_temp_files(server.output_dir)
    figures(
        "kill -9 mid-sync (server, PostgreSQL)",
        objects=len(keys) + len(junk),
        styles=SYNC_STYLES,
        styles_recorded_at_kill=f"{styles_at_kill}/{SYNC_STYLES}",
        files_at_kill=files_at_kill,
        kills_survived=1,
        created_after_restart=report["created"],
        unchanged_after_restart=report["unchanged"],
        duplicate_entries=0,
        duplicate_CreatedFromS3=0,
        temp_files_left=f"{len(temp_after_kill)} after kill, {len(leftovers)} at end",
        resumed_sync_s=f"{resumed_seconds:.1f}",
        clean_sync_s=f"{clean_seconds:.1f}",
    )


# --------------------------------------------------------------------------- import

IMPORT_STYLES = 60
IMPORT_VERSIONS = 60


def _legacy_entry(style: int, n: int) -> dict[str, Any]:
    job = str(uuid.UUID(int=style * 100_000 + n)) + "-e1"
    entry: dict[str, Any] = {
        "id": job,
        "name": f"V{n}",
        "description": f"style {style} try {n}: ünïcödé ✓",
        "timestamp": f"2025-10-{1 + n % 28:02d}T12:{n % 60:02d}:00.000Z",
        "parameters": {"learning_rate": 0.0003, "max_train_steps": 100 * n, "network_dim": 16},
    }
    if n % 5 == 0:
        entry.update(status="failed", error="Training workflow processing failed")
        entry["failedAt"] = entry["timestamp"]
    elif n % 7 == 0:
        entry["status"] = "pending"
    else:
        entry["status"] = "completed"
        entry["loraUrl"] = (
            "https://storyboard-user-files.s3-accelerate.amazonaws.com/"
            f"actor_maker_user/custom-styles-models/style_{style}_vV{n}.safetensors"
        )
        entry["completedAt"] = entry["timestamp"]
    entry["selectionSetId"] = style
    if n % 3 == 0:
        entry["isGood"] = n % 2 == 0
    return entry


def _synced_duplicate(style: int, n: int) -> dict[str, Any]:
    """What the old S3 sync added next to a version it did not recognise."""
    return {
        "id": f"style_{style}_vV{n}",
        "name": f"style_{style}_vV{n}.safetensors" if n % 2 else f"V{n}",
        "description": "Synced from S3",
        "timestamp": "2025-10-20T05:55:19.167Z",
        "parameters": {},
        "status": "completed",
        "loraUrl": (
            "https://storyboard-user-files.s3.amazonaws.com/"
            f"actor_maker_user/custom-styles-models/style_{style}_vV{n}.safetensors"
        ),
        "lastSynced": "2025-10-20T05:55:19.167Z",
    }


def _legacy_tree(
    root: Path, styles: int = IMPORT_STYLES, per_style: int = IMPORT_VERSIONS
) -> tuple[int, int]:
    """`styles` folders `<id>_<slug>/training_versions.json`; returns (entries, duplicates)."""
    entries = duplicated = 0
    for style in range(1, styles + 1):
        versions = []
        for n in range(per_style, 0, -1):
            versions.append(_legacy_entry(style, n))
            if n % 4 == 0:
                versions.append(_synced_duplicate(style, n))
                duplicated += 1
        entries += len(versions)
        folder = root / f"{style}_style_number_{style}"
        folder.mkdir(parents=True)
        (folder / "training_versions.json").write_text(json.dumps({"versions": versions}, indent=2) + "\n")
    return entries, duplicated


def _import_and_kill(server: LedgerServer, tree: Path, at_least: int) -> int:
    """Start `loraledger import`, kill -9 it once `at_least` events are stored; returns the count."""
    process = server.cli_process("import", str(tree))
    try:
        reached = wait_for(lambda: event_count(server.database_url) >= at_least, 120, 0.01)
        finished = process.poll() is not None
    finally:
        if process.poll() is None:
            _kill_group(process)
    _, err = process.communicate(timeout=10)
    assert reached and not finished, f"import ended before the kill: {process.returncode}\n{err.decode()}"
    assert process.returncode == -signal.SIGKILL
    return event_count(server.database_url)


def _json_files(output_dir: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(output_dir): p.read_bytes() for p in sorted(output_dir.rglob("training_versions.json"))
    }


@pytest.mark.slow
def test_kill_9_of_an_import_twice_then_import_again_converges_to_a_clean_import(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    tree = tmp_path / "legacy"
    entries, duplicated = _legacy_tree(tree)
    interrupted = make_server(start=False)
    first_kill = _import_and_kill(interrupted, tree, 400)
    second_kill = _import_and_kill(interrupted, tree, first_kill + 1500)
    result = interrupted.cli("import", str(tree), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    again = interrupted.cli("import", str(tree), timeout=300)  # and once more: nothing new
    assert again.returncode == 0 and again.stdout.count("recorded 0 events") == IMPORT_STYLES, again.stdout

    clean = make_server(start=False)
    began = time.monotonic()
    result = clean.cli("import", str(tree), timeout=300)
    clean_seconds = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr

    # The history: every entry recorded once, the same events as one clean import.
    types, per = _history_figures(interrupted.database_url)
    clean_types, _ = _history_figures(clean.database_url)
    assert types == clean_types, (types, clean_types)
    assert set(per["Imported"].values()) == {1} and len(per["Imported"]) == IMPORT_STYLES * IMPORT_VERSIONS
    assert types["Merged"] == duplicated

    # The files: regenerated from that history they are the clean import's, byte for byte.
    # (That the re-run import alone writes them all is the next test.)
    reference = _json_files(clean.output_dir)
    missing_before_rebuild = len(set(reference) - set(_json_files(interrupted.output_dir)))
    rebuilt = interrupted.cli("rebuild", timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    resumed = _json_files(interrupted.output_dir)
    assert len(reference) == IMPORT_STYLES and sorted(resumed) == sorted(reference)
    different = [name for name in reference if resumed[name] != reference[name]]
    assert different == [], "the interrupted import wrote other bytes than a clean one"
    documents = read_documents(interrupted.output_dir)
    assert duplicates(documents) == []
    assert sum(len(v) for v in documents.values()) == IMPORT_STYLES * IMPORT_VERSIONS
    figures(
        "kill -9 mid-import (CLI, SQLite)",
        legacy_files=IMPORT_STYLES,
        entries=entries,
        duplicates_merged=types["Merged"],
        events_at_kills=f"{first_kill}, {second_kill} of {sum(clean_types.values())}",
        kills_survived=2,
        duplicate_Imported=0,
        files_missing_after_rerun=missing_before_rebuild,
        byte_identical_files_after_rebuild=f"{len(reference) - len(different)}/{len(reference)}",
        clean_import_s=f"{clean_seconds:.1f}",
    )


def test_after_a_killed_import_the_next_import_writes_every_file(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    tree = tmp_path / "legacy"
    _legacy_tree(tree, styles=30, per_style=40)
    interrupted = make_server(start=False)
    _import_and_kill(interrupted, tree, 200)
    assert interrupted.cli("import", str(tree), timeout=300).returncode == 0
    clean = make_server(start=False)
    assert clean.cli("import", str(tree), timeout=300).returncode == 0
    reference, resumed = _json_files(clean.output_dir), _json_files(interrupted.output_dir)
    assert sorted(resumed) == sorted(reference), f"{len(set(reference) - set(resumed))} files missing"
    assert resumed == reference


def test_after_a_killed_cli_sync_the_next_sync_writes_every_file(make_server: ServerFactory) -> None:
    server = make_server(start=False)
    styles, per_style = 30, 200
    server.bucket.put_many(
        f"{S3_PREFIX}style_{style}_vV{n}.safetensors"
        for style in range(1, styles + 1)
        for n in range(1, per_style + 1)
    )
    process = server.cli_process("sync")
    try:
        reached = wait_for(lambda: event_count(server.database_url) >= 3 * per_style, 120, 0.01)
        finished = process.poll() is not None
    finally:
        if process.poll() is None:
            _kill_group(process)
    process.communicate(timeout=10)
    assert reached and not finished, "the sync ended before the kill"
    assert server.cli("sync", timeout=300).returncode == 0
    documents = read_documents(server.output_dir)
    assert sorted(documents) == list(range(1, styles + 1)), f"{styles - len(documents)} files missing"
    assert sum(len(entries) for entries in documents.values()) == styles * per_style
