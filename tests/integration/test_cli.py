"""The real `loraledger` command (run by the interpreter running the tests) on a SQLite store.

Each test gets its own working folder (so no `.env` of the developer is read) and an environment
without any `LORALEDGER_*` variable of the caller; the S3 tests point it at the moto test server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from loraledger.adapters.store import postgres_connection, store_env
from loraledger.api.bootstrap import open_service
from loraledger.api.facade import Service
from loraledger.api.settings import Settings
from tests.support.commands import loraledger_command
from tests.support.runpod_stub import RunPodStub
from tests.support.s3_server import S3Bucket
from tests.support.stores import drop_schema, fresh_postgres_url

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
DOCUMENT = "training_versions.json"
TREE_LAYOUT = "{style_id}_*/training_versions.json"
PREFIX = "actor_maker_user/custom-styles-models/"
JOB_ID = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
ACCELERATED_URL = (
    "https://storyboard-user-files.s3-accelerate.amazonaws.com/"
    "actor_maker_user/custom-styles-models/style_1_vV8.safetensors"
)
PARAMETERS = {
    "network_dim": 16,
    "network_alpha": 16,
    "learning_rate": 0.0003,
    "max_train_steps": 3600,
    "lr_scheduler": "cosine_with_restarts",
    "optimizer_type": "adamw8bit",
    "batch_size": 2,
    "class_tokens": "style SBai_style_1",
}
# The design note's "Before": a sync-invented entry named by its file, and the real (pending) V8.
BEFORE = {
    "versions": [
        {
            "id": "style_1_vV8",
            "name": "style_1_vV8.safetensors",
            "status": "completed",
            "loraUrl": ACCELERATED_URL,
            "description": "Synced from S3",
            "timestamp": "2025-10-14T05:55:18.000Z",
            "parameters": {},
            "lastSynced": "2025-10-14T05:55:19.167Z",
        },
        {
            "id": JOB_ID,
            "name": "V8",
            "description": "more steps, higher learning rate",
            "timestamp": "2025-10-13T19:36:17.724Z",
            "parameters": PARAMETERS,
            "status": "pending",
            "selectionSetId": 1,
            "imageCount": 43,
        },
    ]
}
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TIMEOUT = 60


@dataclass
class Cli:
    """Runs `loraledger` with a clean environment in a working folder of its own."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.root / "db" / "ledger.db"

    @property
    def styles(self) -> Path:
        return self.root / "styles"

    def run(self, *args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
        env = {**self.env}
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return subprocess.run(
            loraledger_command(*args),
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, (result.stdout, result.stderr)
        return result

    def service(self) -> Service:
        """The same store and folders, in process (to look at what the commands recorded)."""
        return open_service(
            Settings(
                _env_file=None,
                database_url=self.env["LORALEDGER_DATABASE_URL"],
                output_dir=self.env["LORALEDGER_OUTPUT_DIR"],
                output_layout=self.env["LORALEDGER_OUTPUT_LAYOUT"],
            )
        )


def kept_backups(cli: Cli) -> list[Path]:
    """Copies of edited files the service kept: in its state folder (beside the SQLite store)."""
    return sorted((cli.db_path.parent / "loraledger-state").rglob("*.bak"))


def owned_field_edited(text: str) -> str:
    """The file with its first entry's `timestamp` changed: an edit of a field the service owns,
    which it refuses (keeping the file as a backup)."""
    return re.sub(r'"timestamp": "[^"]*"', '"timestamp": "2020-01-01T00:00:00.000Z"', text, count=1)


def make_cli(tmp_path: Path) -> Cli:
    """A `Cli` in `tmp_path/work` on a SQLite store, with none of the developer's LORALEDGER_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    root = tmp_path / "work"
    root.mkdir()
    base.update(
        LORALEDGER_DATABASE_URL=f"sqlite:///{root / 'db' / 'ledger.db'}",
        LORALEDGER_OUTPUT_DIR=str(root / "styles"),
        LORALEDGER_OUTPUT_LAYOUT=TREE_LAYOUT,
        COLUMNS="200",
    )
    return Cli(root, base)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


@pytest.fixture
def s3_cli(cli: Cli, s3_bucket: S3Bucket) -> Cli:
    """The CLI pointed at a fresh bucket on the moto server (credentials come from os.environ)."""
    cli.env.update(
        {k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        LORALEDGER_S3_BUCKET=s3_bucket.name,
        LORALEDGER_S3_PREFIX=PREFIX,
        LORALEDGER_S3_ENDPOINT_URL=s3_bucket.server.endpoint_url,
    )
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        cli.env.pop(name, None)  # would override or taint the test server's fake keys
    return cli


def write_document(path: Path, document: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document, indent=2, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def before_file(cli: Cli) -> Path:
    return write_document(cli.styles / "1_ink_intensity" / DOCUMENT, BEFORE)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def import_before_and_sync(cli: Cli, bucket: S3Bucket) -> Path:
    path = before_file(cli)
    cli.ok("import", str(cli.styles))
    bucket.put(PREFIX + "style_1_vV8.safetensors", b"lora weights")
    cli.ok("sync")
    return path


# --------------------------------------------------------------------------- import and sync


def test_import_of_the_before_example_then_s3_sync_gives_the_after_example(
    s3_cli: Cli, s3_bucket: S3Bucket
) -> None:
    path = before_file(s3_cli)

    imported = s3_cli.ok("import", str(s3_cli.styles))
    assert "1 merged" in imported.stdout
    s3_bucket.put(PREFIX + "style_1_vV8.safetensors", b"lora weights")
    synced = s3_cli.ok("sync")

    assert "scanned 1:" in synced.stdout and "0 created" in synced.stdout
    text = path.read_text(encoding="utf-8")
    assert not text.endswith("\n")
    (v8,) = json.loads(text)["versions"]
    assert v8["id"] == JOB_ID
    assert v8["name"] == "V8"
    assert v8["status"] == "completed"
    assert v8["loraUrl"] == ACCELERATED_URL  # the accelerated URL is never replaced by a plain one
    assert v8["parameters"] == PARAMETERS
    assert v8["description"] == "more steps, higher learning rate"
    assert ISO_MS_Z.fullmatch(v8["lastSynced"]) and v8["lastSynced"] > "2025-10-14T05:55:19.167Z"
    assert (v8["selectionSetId"], v8["imageCount"]) == (1, 43)
    assert text == json.dumps({"versions": [v8]}, indent=2, ensure_ascii=False)


def test_history_shows_the_merge_and_the_rule_that_matched_the_s3_file(
    s3_cli: Cli, s3_bucket: S3Bucket
) -> None:
    import_before_and_sync(s3_cli, s3_bucket)

    text = s3_cli.ok("history", "1", "V8").stdout
    answer = json.loads(s3_cli.ok("history", "1", "v8", "--json").stdout)

    assert "Merged" in text
    assert "second-pass:lora-url-contains-file-name" in text
    assert set(answer) == {"style_id", "version", "events"}
    assert (answer["style_id"], answer["version"]) == (1, "V8")
    events = answer["events"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert all(set(e) >= {"type", "at", "data"} and ISO_MS_Z.fullmatch(e["at"]) for e in events)
    merged = [e for e in events if e["type"] == "Merged"]
    assert len(merged) == 1
    assert merged[0]["decision"]["source"] == "import"
    assert {c["id"] for c in merged[0]["decision"]["candidates"]} == {JOB_ID, "style_1_vV8"}
    synced = [e for e in events if e.get("decision", {}).get("source") == "s3-sync"]
    assert len(synced) == 1
    assert synced[0]["decision"]["rule"].startswith("second-pass:")
    assert [c["id"] for c in synced[0]["decision"]["candidates"] if c["taken"]] == [JOB_ID]


def test_replay_until_a_time_writes_the_files_as_they_were_then(s3_cli: Cli, s3_bucket: S3Bucket) -> None:
    path = before_file(s3_cli)
    s3_cli.ok("import", str(s3_cli.styles))
    then_bytes = path.read_bytes()
    then = datetime.now(UTC)
    time.sleep(0.05)
    s3_bucket.put(PREFIX + "style_1_vV8.safetensors", b"lora weights")
    s3_bucket.put(PREFIX + "style_1_vV9.safetensors", b"more weights")
    s3_cli.ok("sync")
    assert path.read_bytes() != then_bytes

    spellings = {
        "zulu": then.isoformat().replace("+00:00", "Z"),
        "naive": then.replace(tzinfo=None).isoformat(),
        "offset": then.astimezone(timezone(timedelta(hours=2))).isoformat(),
    }
    for label, until in spellings.items():
        out = s3_cli.root / f"replay-{label}"
        s3_cli.ok("replay", "--until", until, "--out", str(out))
        written = sorted(out.rglob(DOCUMENT))
        assert len(written) == 1, (label, written)
        assert written[0].read_bytes() == then_bytes, label

    now_out = s3_cli.root / "replay-now"
    s3_cli.ok("replay", "--until", datetime.now(UTC).isoformat(), "--out", str(now_out))
    assert next(now_out.rglob(DOCUMENT)).read_bytes() == path.read_bytes()


def test_replay_writes_each_file_at_its_path_in_the_live_tree_and_says_so(cli: Cli) -> None:
    before_file(cli)
    cli.ok("import", str(cli.styles))
    out = cli.root / "as-it-was"

    said = cli.ok("replay", "--until", datetime.now(UTC).isoformat(), "--out", str(out)).stdout

    assert said.startswith("wrote 1 style as of ")
    assert [p.relative_to(out) for p in out.rglob("*") if p.is_file()] == [Path("1_ink_intensity") / DOCUMENT]
    assert (out / "1_ink_intensity" / DOCUMENT).read_bytes() == (
        cli.styles / "1_ink_intensity" / DOCUMENT
    ).read_bytes()


def test_replay_to_a_time_before_the_history_says_when_it_begins_and_makes_the_folder(cli: Cli) -> None:
    before_file(cli)
    cli.ok("import", str(cli.styles))
    out = cli.root / "too-early"

    said = one_line(cli.ok("replay", "--until", "2020-01-01T00:00:00Z", "--out", str(out)).stdout)

    assert said.startswith("no style had a version as of 2020-01-01T00:00:00+00:00 (the history begins at ")
    assert out.is_dir() and list(out.iterdir()) == []


# --------------------------------------------------------------------------- doctor, dry run


def test_doctor_on_the_before_example_exits_1_naming_the_duplicate_and_creates_nothing(cli: Cli) -> None:
    path = before_file(cli)
    original = path.read_bytes()

    result = cli.run("doctor", str(path))

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "duplicate" in result.stdout and "V8" in result.stdout
    assert "Traceback" not in result.stderr
    assert not cli.db_path.parent.exists()
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == [DOCUMENT]


def test_doctor_on_a_clean_fixture_exits_0_and_creates_no_database(cli: Cli) -> None:
    path = write_document(
        cli.styles / "82_stellar_sketch" / DOCUMENT,
        (FIXTURES / "style_82_stellar_sketch.json").read_text(encoding="utf-8"),
    )

    result = cli.run("doctor", str(path))

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "ok" in result.stdout
    assert not cli.db_path.parent.exists()


STALE_AND_HALF_SYNCED = {
    "versions": [
        {
            "id": "style_1_vV9",
            "name": "V9",
            "description": "started from the UI, never confirmed",
            "timestamp": "2025-10-01T10:00:00.000Z",
            "parameters": {},
            "status": "pending",
        },
        {
            "id": JOB_ID,
            "name": "V7",
            "description": "synced in half",
            "timestamp": "2025-09-01T10:00:00.000Z",
            "parameters": {},
            "status": "completed",
            "lastSynced": "2025-10-14T05:55:19.167Z",
        },
    ]
}


def test_doctor_finds_a_stale_pending_version_and_a_half_synced_entry_each_with_its_fix(cli: Cli) -> None:
    path = write_document(cli.styles / "1_ink_intensity" / DOCUMENT, STALE_AND_HALF_SYNCED)

    result = cli.run("doctor", str(cli.styles), LORALEDGER_RECONCILE_AFTER="2h")

    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: 3 problems"  # the third: "completed but has no loraUrl"
    (stale,) = [line for line in lines if line.startswith("  V9: ")]
    assert stale.startswith("  V9: pending since 2025-10-01T10:00:00.000Z (")
    assert "no RunPod job known" in stale
    assert stale.endswith(
        f"fix: loraledger import {cli.styles} (once), then loraledger reconcile --older-than 2h:"
        " it marks the attempt failed as never confirmed"
    )
    (half,) = [line for line in lines if line.startswith("  V7: has lastSynced")]
    assert half.startswith("  V7: has lastSynced (2025-10-14T05:55:19.167Z) but no loraUrl; fix: ")
    assert "loraledger sync --style 1" in half
    assert not cli.db_path.parent.exists()


def test_doctor_asks_runpod_about_an_old_pending_job_and_says_when_it_ended(
    cli: Cli, runpod_stub: RunPodStub
) -> None:
    answer = httpx.post(
        f"{runpod_stub.base_url}/{runpod_stub.endpoint_id}/run",
        headers={"Authorization": f"Bearer {runpod_stub.api_key}"},
        json={"input": {"training_config": {"model_name": "style_1_vV8"}}},
    )
    job_id = answer.json()["id"]
    runpod_stub.set_status(job_id, "COMPLETED")
    document = json.loads(json.dumps(BEFORE))
    document["versions"] = [{**document["versions"][1], "id": job_id}]
    write_document(cli.styles / "1_ink_intensity" / DOCUMENT, document)

    result = cli.run(
        "doctor",
        str(cli.styles),
        LORALEDGER_RUNPOD_BASE_URL=runpod_stub.base_url,
        LORALEDGER_RUNPOD_ENDPOINT_ID=runpod_stub.endpoint_id,
        LORALEDGER_RUNPOD_API_KEY=runpod_stub.api_key,
    )

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"but RunPod says job {job_id} ended: COMPLETED; fix: " in result.stdout
    assert "it records RunPod's answer" in result.stdout


def test_import_with_a_style_takes_only_that_styles_folder_and_refuses_one_it_does_not_find(cli: Cli) -> None:
    write_document(cli.styles / "1_ink_intensity" / DOCUMENT, BEFORE)
    write_document(
        cli.styles / "2_portrait" / DOCUMENT,
        (FIXTURES / "style_1_ink_intensity.json").read_text(encoding="utf-8"),
    )

    missing = cli.run("import", str(cli.styles), "--style", "99")

    assert missing.returncode == 1
    assert one_line(missing.stderr) == (
        "error: no training_versions.json of style 99 (a folder named 99 or 99_<slug>)"
        f" found under {cli.styles}"
    )
    imported = cli.ok("import", str(cli.styles), "--style", "2")
    assert imported.stdout.startswith(f"{cli.styles / '2_portrait' / DOCUMENT}: style 2, ")
    assert "1_ink_intensity" not in imported.stdout
    service = cli.service()
    try:
        assert service.ledger.queries.version_names(1) == []
        assert service.ledger.queries.version_names(2) != []
    finally:
        service.close()


def test_reconcile_without_runpod_settings_names_what_reconcile_needs(cli: Cli) -> None:
    result = cli.run("reconcile")

    assert result.returncode == 1
    assert one_line(result.stderr) == (
        "error: LORALEDGER_RUNPOD_ENDPOINT_ID is not set: it is needed to ask RunPod about pending"
        " trainings (reconcile)"
    )


def test_import_dry_run_writes_no_database_and_no_file(cli: Cli) -> None:
    path = before_file(cli)
    original = path.read_bytes()

    result = cli.run("import", str(cli.styles), "--dry-run")

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert re.search(r"would record [1-9]\d* events", result.stdout)
    assert not cli.db_path.parent.exists()
    assert path.read_bytes() == original
    assert sorted(p.relative_to(cli.styles).as_posix() for p in cli.styles.rglob("*")) == [
        "1_ink_intensity",
        f"1_ink_intensity/{DOCUMENT}",
    ]


def test_import_dry_run_on_an_existing_database_records_nothing(cli: Cli) -> None:
    write_document(
        cli.styles / "2_vivid_portraiture" / DOCUMENT,
        (FIXTURES / "style_2_vivid_portraiture.json").read_text(encoding="utf-8"),
    )
    cli.ok("import", str(cli.styles))
    service = cli.service()
    try:
        position = service.ledger.store.recorder.max_notification_id()
    finally:
        service.close()
    path = before_file(cli)
    original = path.read_bytes()

    cli.ok("import", str(cli.styles), "--dry-run")

    service = cli.service()
    try:
        assert service.ledger.store.recorder.max_notification_id() == position
        assert service.ledger.queries.version_names(1) == []
    finally:
        service.close()
    assert path.read_bytes() == original


def _schema_exists(database_url: str) -> bool:
    env = store_env(database_url)
    with postgres_connection(database_url) as connection:
        found = connection.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (env["POSTGRES_SCHEMA"],)
        ).fetchone()
    return found is not None


@pytest.mark.postgres
def test_import_dry_run_on_postgresql_creates_no_schema_or_table(cli: Cli) -> None:
    url = fresh_postgres_url()
    try:
        before_file(cli)

        result = cli.run("import", str(cli.styles), "--dry-run", LORALEDGER_DATABASE_URL=url)

        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "would record" in result.stdout
        assert not _schema_exists(url)
    finally:
        drop_schema(url)


# --------------------------------------------------------------------------- bad input


BAD_FILES = {
    "2_broken": ('{"versions": [{"id": "a",', "not valid JSON"),
    "3_nameless": (
        {"versions": [{"id": "x", "name": "V2", "status": "pending"}, {"id": "y", "status": "pending"}]},
        "has no name",
    ),
    "4_status": ({"versions": [{"id": "x", "name": "V1", "status": "done"}]}, "'done'"),
    "01_x": ({"versions": [{"id": "x", "name": "V5", "status": "pending"}]}, "'01_x'"),
    "x": ({"versions": [{"id": "x", "name": "V5", "status": "pending"}]}, "'x'"),
}


def test_import_refuses_each_bad_file_in_one_line_and_still_imports_the_others(cli: Cli) -> None:
    good = write_document(
        cli.styles / "1_ink_intensity" / DOCUMENT,
        (FIXTURES / "style_1_ink_intensity.json").read_text(encoding="utf-8"),
    )
    for folder, (document, _) in BAD_FILES.items():
        write_document(cli.styles / folder / DOCUMENT, document)

    result = cli.run("import", str(cli.styles))

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert one_line(result.stderr).startswith("error: ")
    lines = result.stdout.splitlines()
    for folder, (_, reason) in BAD_FILES.items():
        path = str(cli.styles / folder / DOCUMENT)
        (at,) = [i for i, line in enumerate(lines) if line.startswith(path + ":")]
        assert "refused" in lines[at]
        assert reason in lines[at + 1], lines[at : at + 2]
        assert at + 2 == len(lines) or not lines[at + 2].startswith("  "), "one line per refusal"
    assert any(line.startswith(f"{good}: style 1, 8 versions") for line in lines)
    service = cli.service()
    try:
        # no V5 from 01_x
        assert service.ledger.queries.version_names(1) == [f"V{n}" for n in range(8, 0, -1)]
        assert [service.ledger.queries.version_names(s) for s in (2, 3, 4, 5)] == [[], [], [], []]
    finally:
        service.close()
    assert json.loads(good.read_text(encoding="utf-8")) == json.loads(
        (FIXTURES / "style_1_ink_intensity.json").read_text(encoding="utf-8")
    )


def test_import_with_a_refused_file_says_the_others_were_recorded(cli: Cli) -> None:
    write_document(cli.styles / "2_broken" / DOCUMENT, "{")
    write_document(
        cli.styles / "5_ok" / DOCUMENT,
        {"versions": [{"id": "x", "name": "V1", "status": "failed"}]},
    )

    result = cli.run("import", str(cli.styles))

    assert result.returncode == 1
    assert "the others were recorded" in one_line(result.stderr)


def test_import_of_a_missing_path_is_a_one_line_error(cli: Cli) -> None:
    missing = cli.root / "no" / "such" / DOCUMENT

    result = cli.run("import", str(missing))

    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("error: ") and str(missing) in line


def test_skipped_lists_each_passed_over_file_once_however_many_syncs_saw_it(
    s3_cli: Cli, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put(PREFIX + "style_1_vV8.safetensors", b"lora weights")
    s3_bucket.put(PREFIX + "Style_2_VV9.safetensors", b"odd name")
    s3_cli.ok("sync")
    s3_cli.ok("sync")

    listed = json.loads(s3_cli.ok("skipped", "--json").stdout)["skipped"]
    (skip,) = listed
    assert skip["key"] == PREFIX + "Style_2_VV9.safetensors"
    assert (skip["rule"], skip["style_id"], skip["source"]) == (
        "skipped:key-is-not-a-lora-name",
        None,
        "s3-sync",
    )
    text = s3_cli.ok("skipped").stdout
    assert text.splitlines()[0] == "1 skipped file"
    assert "Style_2_VV9.safetensors" in text and skip["reason"] in text
    assert json.loads(s3_cli.ok("skipped", "--style", "1", "--json").stdout) == {"skipped": []}


def test_sync_without_a_bucket_names_the_setting_in_one_line(cli: Cli) -> None:
    result = cli.run("sync", LORALEDGER_S3_BUCKET=None)

    assert result.returncode == 1
    assert "LORALEDGER_S3_BUCKET" in one_line(result.stderr)
    assert result.stdout == ""


def test_history_of_an_unknown_version_is_a_one_line_error(cli: Cli) -> None:
    result = cli.run("history", "1", "V99")

    assert result.returncode == 1
    assert "V99" in one_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["history", "1", "V08"],
        ["history", "01", "V8"],
        ["sync", "--no-such-option"],
        ["sync", "--style", "0"],
        ["sync", "--style", "1_0"],
        ["sync", "--style", "+1"],
        ["sync", "--style", " 1 "],
        ["history", "1_0", "V1"],
        ["import", "x", "--style", "1.0"],
        ["doctor", "x", "--style", "true"],
        ["replay", "--until", "yesterday", "--out", "x"],
    ],
    ids=lambda args: " ".join(args),
)
def test_bad_usage_exits_2_and_touches_no_store(cli: Cli, args: list[str]) -> None:
    result = cli.run(*args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert not cli.db_path.parent.exists()


# --------------------------------------------------------------------------- edits by hand


def test_rebuild_after_a_refused_hand_edit_keeps_a_backup_in_the_state_folder_and_names_it(cli: Cli) -> None:
    path = write_document(
        cli.styles / "2_vivid_portraiture" / DOCUMENT,
        (FIXTURES / "style_2_vivid_portraiture.json").read_text(encoding="utf-8"),
    )
    cli.ok("import", str(cli.styles))
    for old in kept_backups(cli):  # the import's own copy of the legacy file
        old.unlink()
    edited = owned_field_edited(path.read_text(encoding="utf-8"))
    path.write_text(edited, encoding="utf-8")

    result = cli.ok("rebuild")

    (backup,) = kept_backups(cli)
    assert backup.read_text(encoding="utf-8") == edited
    assert backup.name in result.stdout + result.stderr
    assert sorted(p.name for p in path.parent.iterdir()) == [DOCUMENT]


# --------------------------------------------------------------------------- text from outside

CLEAR_SCREEN = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"


def test_control_sequences_in_s3_keys_are_shown_escaped_by_sync_and_history_and_kept_exact_in_json(
    s3_cli: Cli, s3_bucket: S3Bucket
) -> None:
    matched = PREFIX + f"{CLEAR_SCREEN}/style_1_vV3.safetensors"  # a file in a sub-folder: V3
    skipped = PREFIX + f"evil{TITLE}\u202e.safetensors"  # no model name: skipped, key quoted
    s3_bucket.put(matched, b"lora weights")
    s3_bucket.put(skipped, b"not a lora")

    synced = s3_cli.ok("sync")
    text = s3_cli.ok("history", "1", "V3")
    answer = json.loads(s3_cli.ok("history", "1", "V3", "--json").stdout)

    for result in (synced, text):
        printed = result.stdout + result.stderr
        assert [char for char in printed if not char.isprintable() and char != "\n"] == [], printed
    assert "1 created" in synced.stdout and "1 skipped" in synced.stdout
    assert "\\x1b]0;pwned\\x07\\u202e" in synced.stdout  # the skipped key, visible as escapes
    assert "\\x1b[2J/style_1_vV3.safetensors" in text.stdout
    assert len(text.stdout.strip().splitlines()) == len(answer["events"]) + 1 + sum(
        1 + len(e["decision"].get("candidates", [])) + len(e["decision"].get("notes", []))
        for e in answer["events"]
        if e.get("decision")
    )
    keys = [e["data"].get("key") for e in answer["events"] if "key" in e["data"]]
    assert keys and set(keys) == {matched}, answer  # the JSON keeps the data exact


# --------------------------------------------------------------------------- replay, rebuild, retries


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_replay_into_the_live_output_folder_is_refused_in_one_line_and_changes_nothing(cli: Cli) -> None:
    before_file(cli)
    cli.ok("import", str(cli.styles))
    live = _tree(cli.styles)
    (cli.root / "link-to-styles").symlink_to(cli.styles, target_is_directory=True)
    until = datetime.now(UTC).isoformat()
    targets = {
        "is": cli.styles,
        "is inside": cli.styles / "1_ink_intensity",
        "holds": cli.root,
        "is ": cli.root / "link-to-styles",
        "is  ": cli.root / "db" / ".." / "styles",
    }
    for where, target in targets.items():
        result = cli.run("replay", "--until", until, "--out", str(target))
        assert result.returncode == 2, (target, result.stdout, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("error: --out ") and f"{where.strip()} the live output folder" in line, line
    assert _tree(cli.styles) == live


def test_files_written_by_replay_carry_no_position_that_would_make_them_look_current(cli: Cli) -> None:
    before_file(cli)
    cli.ok("import", str(cli.styles))
    out = cli.root / "replayed"

    cli.ok("replay", "--until", datetime.now(UTC).isoformat(), "--out", str(out))

    assert [p.name for p in out.rglob("*") if p.is_file()] == [DOCUMENT]  # no record, no mark
    state = cli.db_path.parent / "loraledger-state"
    assert "position:" in next(state.rglob(f"{DOCUMENT}.mark")).read_text()
    assert not [p for p in state.rglob("*") if p.is_relative_to(out)]


def test_rebuild_refuses_a_style_folder_linked_to_another_styles_and_says_why(cli: Cli) -> None:
    path = before_file(cli)
    write_document(
        cli.styles / "2_vivid_portraiture" / DOCUMENT,
        (FIXTURES / "style_2_vivid_portraiture.json").read_text(encoding="utf-8"),
    )
    cli.ok("import", str(cli.styles))
    style_1, backups = path.read_bytes(), kept_backups(cli)  # the legacy file's copy
    second = cli.styles / "2_vivid_portraiture"
    for old in second.iterdir():
        old.unlink()
    second.rmdir()
    second.symlink_to(path.parent, target_is_directory=True)

    result = cli.run("rebuild")

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "wrote 1 style: 1" in result.stdout
    reason, error = result.stderr.strip().splitlines()
    # The reason is a log line (time, level, logger, then the message); the error ends the output.
    assert "ERROR loraledger.projections.writer: style 2: its file cannot be written" in reason
    assert "the file of style 1" in reason
    assert error.startswith("error: the files of styles 2 could not be written")
    assert path.read_bytes() == style_1
    assert kept_backups(cli) == backups


def _legacy(version: str) -> dict[str, Any]:
    return {
        "versions": [
            {
                "id": f"job-{version}",
                "name": version,
                "timestamp": "2025-10-14T10:03:16.817Z",
                "parameters": {},
                "status": "completed",
            }
        ]
    }


def test_a_file_that_could_not_be_written_is_written_by_the_next_command_once_the_folder_is_back(
    cli: Cli,
) -> None:
    cli.env["LORALEDGER_OUTPUT_LAYOUT"] = "{style_id}/training_versions.json"
    first = write_document(cli.root / "legacy" / "v1.json", _legacy("V1"))
    second = write_document(cli.root / "legacy" / "v2.json", _legacy("V2"))
    cli.ok("import", str(first), "--style", "2")
    folder = cli.styles / "2"
    path = folder / DOCUMENT
    assert '"V1"' in path.read_text(encoding="utf-8")
    folder.rename(cli.root / "aside")
    folder.write_text("in the way")  # chmod does not stop root; a file where the folder was does

    blocked = cli.run("import", str(second), "--style", "2")
    assert "style 2: its file cannot be written" in blocked.stderr, blocked.stderr
    folder.unlink()
    (cli.root / "aside").rename(folder)

    again = cli.ok("import", str(second), "--style", "2")  # records nothing: already imported
    assert "recorded 0 events" in again.stdout
    written = json.loads(path.read_text(encoding="utf-8"))
    assert [v["name"] for v in written["versions"]] == ["V2", "V1"]
