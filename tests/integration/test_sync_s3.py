"""S3 sync over HTTP: the Service's boto3 client against the moto test server.

The bucket is filled with `s3_bucket.put` (over HTTP) or `put_many` (straight into moto's backend,
for thousands of keys); the Service lists it through `LORALEDGER_S3_ENDPOINT_URL` as in production.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from loraledger.api.bootstrap import open_service
from loraledger.api.facade import Service
from loraledger.api.render import sync_report_json
from loraledger.api.settings import Settings
from loraledger.application.sync import SyncReport
from tests.support.s3_server import S3Bucket

PREFIX = "actor_maker_user/custom-styles-models/"
JOB_ID = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
ENTRY_ORDER = ["id", "name", "description", "timestamp", "parameters", "status", "loraUrl", "lastSynced"]

ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[ServiceFactory]:
    made: list[Service] = []

    def make(database_url: str | None = None, **overrides: Any) -> Service:
        options: dict[str, Any] = {
            "database_url": database_url or f"sqlite:///{tmp_path / 'ledger.db'}",
            "output_dir": str(tmp_path / "styles"),
            "s3_bucket": s3_bucket.name,
            "s3_prefix": PREFIX,
            "s3_endpoint_url": s3_bucket.server.endpoint_url,
        }
        options.update(overrides)
        service = open_service(Settings(_env_file=None, **options))
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def url_base(bucket: S3Bucket) -> str:
    return f"{bucket.server.endpoint_url}/{bucket.name}/"


def last_modified(bucket: S3Bucket, key: str) -> str:
    """The object's LastModified as the files write times (JavaScript's toISOString)."""
    moment = bucket.server.client().head_object(Bucket=bucket.name, Key=key)["LastModified"]
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def versions(service: Service, style_id: int) -> list[dict[str, Any]]:
    document: list[dict[str, Any]] = json.loads(service.files.path_for(style_id).read_text("utf-8"))[
        "versions"
    ]
    return document


def head(service: Service) -> int:
    return service.ledger.store.recorder.max_notification_id() or 0


def start_pending(service: Service, style_id: int, version_name: str, job_id: str) -> None:
    """A training started through the ledger (what `POST /styles/{id}/trainings` records)."""
    request = service.ledger.start.request(
        style_id, version_name, parameters={"learning_rate": 0.0003, "max_train_steps": 3600}
    )
    service.ledger.start.record_start(request, job_id)


def count_writes(service: Service) -> Counter[int]:
    """Counts the projection writer's writes per style from now on."""
    writes: Counter[int] = Counter()
    write = service.files.write

    def counting(style_id: int, text: str, position: str | None = None) -> Any:
        writes[style_id] += 1
        return write(style_id, text, position)

    service.files.write = counting  # type: ignore[method-assign]
    return writes


# --------------------------------------------------------------------------- first sync


def test_first_sync_creates_an_entry_per_lora_file_as_the_contract_writes_it(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    keys = [PREFIX + "style_1_vV8.safetensors", PREFIX + "style_1_vV7.safetensors"]
    for key in keys:
        s3_bucket.put(key, b"weights " + key.encode())
    service = make_service()

    report = service.sync()

    assert (report.scanned, report.created, report.matched_pending, report.matched_synced) == (2, 2, 0, 0)
    assert report.skipped == []
    entries = versions(service, 1)
    assert [e["name"] for e in entries] == ["V8", "V7"]
    for entry, key in zip(entries, keys, strict=True):
        assert entry["id"] == f"style_1_v{entry['name']}"
        assert entry["description"] == "Synced from S3"
        assert entry["parameters"] == {}
        assert entry["status"] == "completed"
        assert entry["loraUrl"] == url_base(s3_bucket) + key
        assert entry["timestamp"] == last_modified(s3_bucket, key)
        assert entry["lastSynced"] >= entry["timestamp"]
        assert [k for k in entry if k in ENTRY_ORDER] == [k for k in ENTRY_ORDER if k in entry]


def test_legacy_spellings_create_entries_with_the_canonical_model_name_as_id(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put(PREFIX + "style_2_v3.safetensors")
    s3_bucket.put(PREFIX + "style_2_vv4.safetensors")
    service = make_service()

    report = service.sync()

    assert report.created == 2 and report.skipped == []
    entries = {e["name"]: e for e in versions(service, 2)}
    assert entries["V3"]["id"] == "style_2_vV3"
    assert entries["V4"]["id"] == "style_2_vV4"
    assert entries["V3"]["loraUrl"].endswith("/style_2_v3.safetensors")  # the object as it is named
    notes = [note for d in report.decisions for note in d.notes]
    assert any("style_2_v3" in note and "style_2_vV3" in note for note in notes), notes
    again = service.sync()
    assert (again.events, again.unchanged) == (0, 2)


def test_skipped_keys_are_listed_with_full_key_and_reason_and_keys_outside_the_prefix_not_at_all(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    skipped = {
        PREFIX + "notes.txt": ".safetensors",
        PREFIX + "style_01_vV8.safetensors": "'01'",
        PREFIX + "style_1_vV8 (1).safetensors": "(1)",
        PREFIX + "style_1_vV08.safetensors": "V08",
        PREFIX + "style_1_v.safetensors": "missing",
        PREFIX + "style_1_vV9.safetensors.tmp": "temporary",
    }
    inside = [*skipped, PREFIX + "style_1_vV8.safetensors"]
    outside = [
        "style_3_vV1.safetensors",
        "other/style_3_vV2.safetensors",
        "actor_maker_user/custom-styles-models-old/style_3_vV3.safetensors",
        "actor_maker_user/notes.txt",
    ]
    for key in [*inside, *outside]:
        s3_bucket.put(key)
    service = make_service()

    report = service.sync()

    assert report.scanned == len(inside)
    assert report.created == 1
    listed = {item["key"]: item["reason"] for item in report.skipped}
    assert set(listed) == set(skipped)
    for key, hint in skipped.items():
        assert hint in listed[key], (key, listed[key])
    assert service.ledger.queries.version_names(3) == []
    assert service.ledger.queries.version_names(1) == ["V8"]


# --------------------------------------------------------------------------- re-sync


def test_a_resync_with_nothing_new_records_no_event_and_reports_everything_unchanged(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put_many([PREFIX + f"style_{s}_vV{n}.safetensors" for s in (1, 2) for n in range(1, 6)])
    s3_bucket.put(PREFIX + "readme.md")
    service = make_service()
    start_pending(service, 2, "V6", JOB_ID)
    s3_bucket.put(PREFIX + "style_2_vV6.safetensors")
    first = service.sync()
    assert (first.created, first.matched_pending) == (10, 1)
    position = head(service)
    files = {s: service.files.path_for(s).read_bytes() for s in (1, 2)}

    again = service.sync()

    assert again.events == 0
    assert head(service) == position
    assert again.unchanged == 11
    assert (again.created, again.matched_pending, again.matched_synced) == (0, 0, 0)
    assert [item["key"] for item in again.skipped] == [PREFIX + "readme.md"]
    assert {s: service.files.path_for(s).read_bytes() for s in (1, 2)} == files


def test_a_pending_version_is_completed_by_its_file_keeping_job_id_and_parameters(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    service = make_service()
    start_pending(service, 1, "V8", JOB_ID)
    key = PREFIX + "style_1_vV8.safetensors"
    s3_bucket.put(key)

    report = service.sync()

    assert (report.matched_pending, report.created) == (1, 0)
    (entry,) = versions(service, 1)
    assert entry["id"] == JOB_ID
    assert entry["status"] == "completed"
    assert entry["loraUrl"] == url_base(s3_bucket) + key
    assert entry["parameters"] == {"learning_rate": 0.0003, "max_train_steps": 3600}
    assert "lastSynced" in entry
    (decision,) = report.decisions
    assert decision.rule.startswith("first-pass:")


def test_zero_byte_objects_are_skipped_with_a_reason_and_complete_or_create_nothing(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    service = make_service()
    start_pending(service, 1, "V5", JOB_ID)
    empty_pending, empty_unknown = PREFIX + "style_1_vV5.safetensors", PREFIX + "style_4_vV5.safetensors"
    s3_bucket.put(empty_pending, b"")
    s3_bucket.put(empty_unknown, b"")
    before = head(service)

    report = service.sync()

    assert (report.scanned, report.matched_pending, report.created) == (2, 0, 0)
    assert {s["key"]: s["reason"] for s in report.skipped} == {
        empty_unknown: "V5: the file is empty (0 bytes): not a LoRA",
        empty_pending: "V5: the file is empty (0 bytes): not a LoRA",
    }
    assert [d.input["size"] for d in report.decisions] == [0, 0]
    assert head(service) == before + report.events  # the skips alone are recorded
    assert {s["key"] for s in service.skipped_files()} == {empty_pending, empty_unknown}
    assert service.sync().events == 0  # reported again, recorded once
    (entry,) = versions(service, 1)
    assert entry["status"] == "pending" and "loraUrl" not in entry
    assert service.ledger.queries.version_names(4) == []

    s3_bucket.put(empty_pending, b"weights")  # the upload finished
    assert service.sync().matched_pending == 1
    assert versions(service, 1)[0]["status"] == "completed"


def test_an_object_with_a_new_etag_is_matched_again(
    make_service: ServiceFactory, s3_bucket: S3Bucket
) -> None:
    key = PREFIX + "style_1_vV8.safetensors"
    s3_bucket.put(key, b"first upload")
    s3_bucket.put(PREFIX + "style_1_vV7.safetensors", b"other")
    service = make_service()
    service.sync()
    synced_before = versions(service, 1)[0]["lastSynced"]
    time.sleep(0.01)

    s3_bucket.put(key, b"second upload, new bytes")
    report = service.sync()

    assert report.events > 0
    assert (report.unchanged, report.matched_synced, report.created) == (1, 1, 0)
    (decision,) = report.decisions
    assert decision.input["key"] == key
    assert decision.rule.startswith("second-pass:")
    entries = {e["name"]: e for e in versions(service, 1)}
    assert entries["V8"]["lastSynced"] > synced_before
    assert len(entries) == 2
    assert [type(e).__name__ for e in service.ledger.queries.history(1, "V8")].count("LoraSynced") == 1


# --------------------------------------------------------------------------- URL upgrades


def _import_completed(service: Service, tmp_path: Path, lora_url: str) -> None:
    document = {
        "versions": [
            {
                "id": JOB_ID,
                "name": "V8",
                "timestamp": "2025-10-13T19:36:17.724Z",
                "parameters": {"learning_rate": 0.0003},
                "status": "completed",
                "loraUrl": lora_url,
            }
        ]
    }
    path = tmp_path / "legacy" / "training_versions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    (outcome,) = service.import_path(path, 1)
    assert outcome.report is not None, outcome.errors


def test_an_accelerated_lora_url_is_never_replaced_by_a_plain_one(
    make_service: ServiceFactory, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    accelerated = f"https://{s3_bucket.name}.s3-accelerate.amazonaws.com/{PREFIX}style_1_vV8.safetensors"
    service = make_service()
    _import_completed(service, tmp_path, accelerated)
    s3_bucket.put(PREFIX + "style_1_vV8.safetensors")

    report = service.sync()

    assert report.matched_synced == 1
    (entry,) = versions(service, 1)
    assert entry["loraUrl"] == accelerated
    assert entry["id"] == JOB_ID


def test_a_plain_lora_url_gives_way_to_an_accelerated_one(
    make_service: ServiceFactory, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    plain = f"https://{s3_bucket.name}.s3.amazonaws.com/{PREFIX}style_1_vV8.safetensors"
    accelerated_base = f"https://{s3_bucket.name}.s3-accelerate.amazonaws.com/"
    service = make_service(lora_url_base=accelerated_base)
    _import_completed(service, tmp_path, plain)
    s3_bucket.put(PREFIX + "style_1_vV8.safetensors")

    service.sync()

    (entry,) = versions(service, 1)
    assert entry["loraUrl"] == accelerated_base + PREFIX + "style_1_vV8.safetensors"


# --------------------------------------------------------------------------- scale


STYLES = 50
PER_STYLE = 400  # 50 x 400 = 20,000 objects


def _print_sync(label: str, seconds: float, report: SyncReport, writes: Counter[int]) -> None:
    print(
        f"\n[20k sync] {label}: {seconds:.2f} s, {report.events} events, scanned {report.scanned}, "
        f"created {report.created}, completed pending {report.matched_pending}, "
        f"unchanged {report.unchanged}, file writes {sum(writes.values())}"
    )


@pytest.mark.slow
def test_sync_of_20000_objects_over_50_styles_writes_one_entry_per_version_and_each_file_once(
    make_service: ServiceFactory, s3_bucket: S3Bucket, database_url: str
) -> None:
    keys = [
        PREFIX + f"style_{s}_vV{n}.safetensors" for s in range(1, STYLES + 1) for n in range(1, PER_STYLE + 1)
    ]
    s3_bucket.put_many(keys)
    service = make_service(database_url)
    pending = range(1, STYLES + 1, 2)  # half the styles: a training started before the sync
    for style_id in pending:
        start_pending(service, style_id, f"V{PER_STYLE}", f"job-{style_id:04d}-aaaa-bbbb-cccc-e1")
    service.catch_up()
    writes = count_writes(service)

    started = time.perf_counter()
    first = service.sync()
    _print_sync("first sync", time.perf_counter() - started, first, writes)

    assert first.scanned == len(keys)
    assert (first.matched_pending, first.created) == (len(pending), len(keys) - len(pending))
    assert writes == Counter({s: 1 for s in range(1, STYLES + 1)})
    expected_names = [f"V{n}" for n in range(PER_STYLE, 0, -1)]
    for style_id in range(1, STYLES + 1):
        entries = versions(service, style_id)
        assert [e["name"] for e in entries] == expected_names, style_id
        assert all(e["status"] == "completed" for e in entries)
        started_job = f"job-{style_id:04d}-aaaa-bbbb-cccc-e1"
        assert entries[0]["id"] == (started_job if style_id in pending else f"style_{style_id}_vV{PER_STYLE}")

    writes.clear()
    position = head(service)
    started = time.perf_counter()
    again = service.sync()
    _print_sync("re-sync", time.perf_counter() - started, again, writes)

    assert again.events == 0
    assert head(service) == position
    assert again.unchanged == len(keys)
    assert all(count <= 1 for count in writes.values())


# --------------------------------------------------------------------------- missing style folders


def test_a_new_style_without_its_folder_never_lands_in_a_bare_id_folder_and_the_report_names_it(
    make_service: ServiceFactory, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    images = tmp_path / "resources" / "style_images"
    (images / "1_ink_intensity").mkdir(parents=True)
    (images / "3").mkdir()  # the deployment's assessments of style 3, not its file
    s3_bucket.put(PREFIX + "style_1_vV1.safetensors", b"one")
    s3_bucket.put(PREFIX + "style_3_vV1.safetensors", b"three")
    service = make_service(output_dir=str(images), output_layout="{style_id}_*/training_versions.json")

    report = service.sync()

    assert report.created == 2 and set(report.waiting) == {3}
    assert "3_*" in sync_report_json(report)["waiting"][0]["reason"]
    assert "waiting" not in sync_report_json(service.sync())  # nothing touched style 3 this time
    assert (images / "1_ink_intensity" / "training_versions.json").exists()
    assert list((images / "3").iterdir()) == []
    (images / "3_watercolor").mkdir()  # the team adds the folder: the next command writes it
    service.rebuild()
    assert json.loads((images / "3_watercolor" / "training_versions.json").read_text())["versions"]


def test_with_a_fallback_a_new_styles_file_goes_where_the_old_ui_reads_it(
    make_service: ServiceFactory, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    images = tmp_path / "resources" / "style_images"
    images.mkdir(parents=True)
    s3_bucket.put(PREFIX + "style_3_vV1.safetensors", b"three")
    service = make_service(
        output_dir=str(images),
        output_layout="{style_id}_*/training_versions.json",
        output_fallback="../../data/training_versions/{style_id}.json",
    )

    report = service.sync()

    fallback = tmp_path / "data" / "training_versions" / "3.json"
    assert report.waiting == {} and json.loads(fallback.read_text())["versions"][0]["name"] == "V1"
    assert list(images.iterdir()) == []
    (images / "3_watercolor").mkdir()
    s3_bucket.put(PREFIX + "style_3_vV2.safetensors", b"three again")
    service.sync()
    written = json.loads((images / "3_watercolor" / "training_versions.json").read_text())
    assert [v["name"] for v in written["versions"]] == ["V2", "V1"]
    assert not fallback.exists()
