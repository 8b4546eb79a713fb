"""The core (Service -> Ledger -> event store -> projection files) on a real store.

Every test runs on a SQLite file and on PostgreSQL (a fresh schema), through the `database_url`
fixture. Nothing here talks to S3 or RunPod: what those would say is handed to the ledger as the
plain values the adapters build (`LoraObject`, job ids).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loraledger.api.bootstrap import open_service
from loraledger.api.facade import Service
from loraledger.api.settings import Settings
from loraledger.domain.observations import LoraObject
from loraledger.projections.runner import log_identity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
STYLE_FIXTURES = sorted(FIXTURES.glob("style_*.json"))
ACTOR_FIXTURES = sorted(FIXTURES.glob("actor_*.json"))
TREE_LAYOUT = "{style_id}_*/training_versions.json"
DOCUMENT = "training_versions.json"
URL_BASE = "https://bucket.s3.amazonaws.com/models/"

ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(database_url: str, tmp_path: Path) -> Iterator[ServiceFactory]:
    """Services on the test's database; each closed at the end of the test."""
    made: list[Service] = []

    def make(output_dir: Path | None = None, layout: str = "{style_id}/training_versions.json") -> Service:
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            output_dir=str(output_dir or tmp_path / "out"),
            output_layout=layout,
            state_dir=str(tmp_path / "loraledger-state"),
            lora_url_base=URL_BASE,
            s3_prefix="models/",
        )
        service = open_service(settings)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def style_id_and_slug(fixture: Path) -> tuple[int, str]:
    _, style_id, slug = fixture.stem.split("_", 2)
    return int(style_id), slug


def lay_out_style_tree(root: Path) -> dict[int, str]:
    """Every style fixture as `<root>/<id>_<slug>/training_versions.json`; the original texts by id."""
    originals = {}
    for fixture in STYLE_FIXTURES:
        style_id, slug = style_id_and_slug(fixture)
        folder = root / f"{style_id}_{slug}"
        folder.mkdir(parents=True)
        shutil.copyfile(fixture, folder / DOCUMENT)
        originals[style_id] = fixture.read_text(encoding="utf-8")
    return originals


def same_but_trailing_newline(written: str, original: str) -> bool:
    return written in (original, original.removesuffix("\n"))


def mismatches(service: Service, originals: dict[int, str]) -> list[str]:
    """Styles whose file is missing or differs from the original by more than a trailing newline."""
    wrong = []
    for style_id, original in originals.items():
        path = service.files.path_for(style_id)
        if not path.exists():
            wrong.append(f"style {style_id}: {path} missing")
            continue
        written = path.read_text(encoding="utf-8")
        if not same_but_trailing_newline(written, original):
            first = next(
                (i for i, (a, b) in enumerate(zip(written, original, strict=False)) if a != b),
                min(len(written), len(original)),
            )
            around = slice(max(0, first - 60), first + 60)
            wrong.append(
                f"style {style_id}: differs at char {first}: {written[around]!r} vs {original[around]!r}"
            )
    return wrong


def remove_projection_files(root: Path) -> None:
    """The projections and their sidecars, so that a rebuild really writes them anew."""
    for path in [*root.rglob(DOCUMENT), *root.rglob(f".{DOCUMENT}.loraledger")]:
        path.unlink()


def head(service: Service) -> int:
    return service.ledger.store.recorder.max_notification_id() or 0


def snapshot(service: Service, style_ids: list[int]) -> dict[int, bytes]:
    return {style_id: service.files.path_for(style_id).read_bytes() for style_id in style_ids}


# --------------------------------------------------------------------------- import -> rebuild


def test_every_style_fixture_imported_as_a_tree_is_written_back_and_rebuilt_unchanged(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    tree = tmp_path / "styles"
    originals = lay_out_style_tree(tree)
    service = make_service(tree, TREE_LAYOUT)

    outcomes = service.import_path(tree, None)

    assert [o.errors for o in outcomes if o.report is None] == []
    assert {o.report.style_id for o in outcomes if o.report} == set(originals)
    assert mismatches(service, originals) == [], "written back in place by the import"
    # The layout must have picked the existing `<id>_<slug>` folders, not created `<id>` ones.
    assert sorted(p.name for p in tree.iterdir() if not p.name.startswith(".")) == sorted(
        "{}_{}".format(*style_id_and_slug(fixture)) for fixture in STYLE_FIXTURES
    )

    remove_projection_files(tree)
    rebuilt = make_service(tree, TREE_LAYOUT).rebuild().styles_written

    assert sorted(rebuilt) == sorted(originals)
    assert mismatches(service, originals) == [], "after a rebuild from the event history"


def test_every_actor_fixture_imported_with_an_explicit_style_is_rebuilt_unchanged(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    # Several actor files are revisions of one file: each gets its own id, so its own folder.
    service = make_service(tmp_path / "actors")
    originals: dict[int, str] = {}
    for style_id, fixture in enumerate(ACTOR_FIXTURES, start=1):
        outcomes = service.import_path(fixture, style_id)
        assert [(o.report.style_id if o.report else None, o.errors) for o in outcomes] == [(style_id, ())]
        originals[style_id] = fixture.read_text(encoding="utf-8")

    assert mismatches(service, originals) == [], "written by the imports"

    remove_projection_files(tmp_path / "actors")
    rebuilt = make_service(tmp_path / "actors").rebuild().styles_written

    assert sorted(rebuilt) == sorted(originals)
    assert mismatches(service, originals) == [], "after a rebuild from the event history"


def test_a_second_import_of_the_same_tree_records_no_event(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    tree = tmp_path / "styles"
    lay_out_style_tree(tree)
    service = make_service(tree, TREE_LAYOUT)
    first = service.import_path(tree, None)
    position = head(service)
    entries = sum(o.report.versions for o in first if o.report)

    second = service.import_path(tree, None)

    assert sum(o.report.events for o in first if o.report) > 0
    assert [o.report.events for o in second if o.report] == [0] * len(STYLE_FIXTURES)
    assert sum(o.report.already_imported for o in second if o.report) == entries
    assert head(service) == position


def test_rebuild_from_scratch_gives_the_bytes_kept_up_incrementally(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    tree = tmp_path / "styles"
    lay_out_style_tree(tree)
    service = make_service(tree, TREE_LAYOUT)
    service.import_path(tree, None)
    ledger = service.ledger
    # More history after the import, each step written incrementally by the service's projection writer.
    request = ledger.start.request(1, None, parameters={"learning_rate": 0.0002}, description="next")
    ledger.start.record_start(request, "0b5c3a3e-2f8e-4a53-9d55-4c1f2a7d0e11-e1")
    service.catch_up()
    ledger.start.request(2, "V3", parameters={"max_train_steps": 1200}, fields={"selectionSetId": 4})
    service.catch_up()
    service.annotate(1, "V7", {"isGood": True, "note": "ünïcode ✓"}, [])
    service.annotate(82, "V6", {}, ["isGood"])
    moment = datetime(2025, 11, 2, 10, 30, 5, 123000, tzinfo=UTC)
    (tree / "777_new_style").mkdir()  # the layout writes a style only into its own folder
    ledger.sync.observe(
        [
            LoraObject(f"models/{request.model_name}.safetensors", "e1", 10, moment),
            LoraObject("models/style_2_vV3.safetensors", "e2", 11, moment),
            LoraObject("models/style_777_v1.safetensors", "e3", 12, moment),
        ],
        url_base=URL_BASE,
    )
    service.catch_up()
    assert '"note": "ünïcode ✓"' in service.files.path_for(1).read_text(encoding="utf-8")
    styles = sorted({*service.projection.styles()})
    assert 777 in styles
    incremental = snapshot(service, styles)

    for folder in tree.iterdir():  # the style folders of the team's tree, without their files
        (tmp_path / "rebuilt" / folder.name).mkdir(parents=True)
    fresh = make_service(tmp_path / "rebuilt", TREE_LAYOUT)
    assert sorted(fresh.rebuild().styles_written) == styles
    assert snapshot(fresh, styles) == incremental

    replayed = tmp_path / "replayed"
    service.replay(datetime.now(UTC) + timedelta(days=1), replayed)
    assert snapshot(make_service(replayed, TREE_LAYOUT), styles) == incremental


# --------------------------------------------------------------------------- concurrency


def test_two_threads_annotating_one_version_fifty_times_each_lose_nothing(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    service = make_service()
    service.ledger.start.request(5, "V1", parameters={"learning_rate": 0.0001})
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def annotate(prefix: str) -> None:
        try:
            start.wait()
            for i in range(50):
                service.annotate(5, "V1", {f"{prefix}{i}": i}, [])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=annotate, args=(p,)) for p in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    entry = service.ledger.queries.find_version(5, "V1").entry
    expected = {f"{p}{i}": i for p in ("a", "b") for i in range(50)}
    assert {k: v for k, v in entry.items() if k in expected} == expected
    events = service.ledger.queries.history(5, "V1")
    assert sum(type(e).__name__ == "Annotated" for e in events) == 100
    written = service.files.path_for(5).read_text(encoding="utf-8")
    assert all(f'"{key}": {value}' in written for key, value in expected.items())


def test_two_services_on_one_database_racing_to_request_versions_of_one_style_lose_nothing(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    services = [make_service(), make_service()]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def request(service: Service, names: list[str]) -> None:
        try:
            start.wait()
            for name in names:
                service.ledger.start.request(9, name, parameters={"n": name})
                service.catch_up()
        except BaseException as error:
            errors.append(error)

    halves = [[f"V{n}" for n in range(1, 41, 2)], [f"V{n}" for n in range(2, 41, 2)]]
    threads = [threading.Thread(target=request, args=pair) for pair in zip(services, halves, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    expected = [f"V{n}" for n in range(40, 0, -1)]
    for service in services:
        assert service.ledger.queries.version_names(9) == expected
        service.catch_up()
    written = services[0].files.path_for(9).read_text(encoding="utf-8")
    assert [line.split('"')[3] for line in written.splitlines() if '"name":' in line] == expected


def test_two_services_racing_to_start_unnamed_versions_each_get_their_own_next_name(
    make_service: ServiceFactory,
) -> None:
    services = [make_service(), make_service()]
    names: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def request(service: Service) -> None:
        try:
            start.wait()
            for _ in range(5):
                names.append(service.ledger.start.request(9, None, parameters={}).version_name)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=request, args=(services[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(names, key=lambda name: int(name[1:])) == [f"V{n}" for n in range(1, 41)]
    assert services[1].ledger.queries.version_names(9) == [f"V{n}" for n in range(40, 0, -1)]


# --------------------------------------------------------------------------- edits by hand


def test_a_field_added_by_hand_between_two_writes_is_taken_in_beside_the_services_change(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    service = make_service()
    service.ledger.start.request(3, "V1", parameters={"learning_rate": 0.0001})
    service.catch_up()
    path = service.files.path_for(3)
    edited = path.read_text(encoding="utf-8").replace('"status"', '"isGood": true,\n      "status"')
    path.write_text(edited, encoding="utf-8")

    service.ledger.annotations.annotate(3, "V1", {"selectionSetId": 7}, [])
    result = service.catch_up()

    assert result.backups == [] and service.take_backups() == []
    written = path.read_text(encoding="utf-8")
    assert '"selectionSetId": 7' in written and '"isGood": true' in written
    assert [e["type"] for e in service.history(3, "V1")["events"]][-2:] == ["Annotated", "EditedInFile"]
    assert sorted(p.name for p in path.parent.iterdir()) == [DOCUMENT]


# --------------------------------------------------------------------------- a restored backup


def _sqlite_backup(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store, as a backup tool makes it."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _restore(backup: Path, database: Path) -> None:
    for leftover in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(backup, database)


def _service_on(database: Path, output_dir: Path) -> Service:
    return open_service(
        Settings(_env_file=None, database_url=f"sqlite:///{database}", output_dir=str(output_dir))
    )


def test_after_a_restored_backup_of_the_store_a_change_rewrites_the_file_from_the_log(
    tmp_path: Path,
) -> None:
    database, saved, out = tmp_path / "ledger.db", tmp_path / "saved.db", tmp_path / "out"
    service = _service_on(database, out)
    service.ledger.start.request(1, "V1", parameters={"learning_rate": 0.0001})
    service.catch_up()
    _sqlite_backup(database, saved)
    for n in range(5):  # history the backup does not have
        service.annotate(1, "V1", {"note": f"after the backup {n}"}, [])
    path = service.files.path_for(1)
    lost = path.read_text(encoding="utf-8")
    assert "after the backup 4" in lost
    service.close()
    _restore(saved, database)

    restored = _service_on(database, out)
    try:
        restored.annotate(1, "V1", {"isGood": True}, [])
        written = path.read_text(encoding="utf-8")
        assert written == restored.document(1)
        assert '"isGood": true' in written and "after the backup" not in written
        (backup,) = (tmp_path / "loraledger-state").rglob(f"{DOCUMENT}.external-*.bak")
        assert backup.read_text(encoding="utf-8") == lost
    finally:
        restored.close()


def test_rebuild_after_a_restored_backup_writes_what_the_log_says_and_reports_it(tmp_path: Path) -> None:
    database, saved, out = tmp_path / "ledger.db", tmp_path / "saved.db", tmp_path / "out"
    service = _service_on(database, out)
    service.ledger.start.request(1, "V1", parameters={"learning_rate": 0.0001})
    service.ledger.start.request(2, "V1", parameters={"learning_rate": 0.0002})
    service.catch_up()
    _sqlite_backup(database, saved)
    service.annotate(1, "V1", {"note": "after the backup"}, [])
    service.ledger.start.request(2, "V2", parameters={})
    service.catch_up()
    service.close()
    _restore(saved, database)

    restored = _service_on(database, out)
    try:
        result = restored.rebuild()
        assert result.styles_written == [1, 2] and result.failed == []
        for style_id in (1, 2):
            assert restored.files.path_for(style_id).read_text(encoding="utf-8") == restored.document(
                style_id
            )
        assert len(restored.take_backups()) == 2
    finally:
        restored.close()


# --------------------------------------------------------------------------- a file that cannot be written


def _block(folder: Path) -> Path:
    """Put a regular file where a style's folder is (chmod does not stop root); returns the folder's
    new place, for `_unblock`."""
    aside = folder.with_name(folder.name + ".aside")
    if folder.exists():
        folder.rename(aside)
    folder.write_text("in the way")
    return aside


def _unblock(folder: Path, aside: Path) -> None:
    folder.unlink()
    if aside.exists():
        aside.rename(folder)


def test_a_style_whose_file_could_not_be_written_is_written_once_the_folder_is_back_without_new_events(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    service = make_service()
    service.ledger.start.request(5, "V1", parameters={"learning_rate": 0.0001})
    service.ledger.start.request(6, "V1", parameters={"learning_rate": 0.0001})
    service.catch_up()
    path = service.files.path_for(5)
    aside = _block(path.parent)

    service.annotate(5, "V1", {"note": "while the folder was away"}, [])
    service.annotate(6, "V1", {"note": "style 6 is fine"}, [])
    failed = service.catch_up()
    assert failed.failed == [] and failed.waiting == [5]  # tried again after a pause, not at once
    assert "style 6 is fine" in service.files.path_for(6).read_text(encoding="utf-8")

    _unblock(path.parent, aside)
    events = head(service)
    deadline = time.monotonic() + 5
    while "while the folder was away" not in path.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, "style 5 was never written again"
        time.sleep(0.2)
        service.catch_up()
    assert head(service) == events  # written without any new event
    assert path.read_text(encoding="utf-8") == service.document(5)
    assert service.files.read_mark() == f"{log_identity(service.ledger.store)}:{events}"


def test_a_failed_write_leaves_the_files_marked_not_current_so_the_next_command_catches_up(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    service = make_service()
    service.ledger.start.request(5, "V1", parameters={"learning_rate": 0.0001})
    service.catch_up()
    assert service.files.read_mark() is not None
    path = service.files.path_for(5)
    aside = _block(path.parent)
    service.annotate(5, "V1", {"note": "while the folder was away"}, [])
    assert service.files.read_mark() is None
    _unblock(path.parent, aside)

    # Another process that recorded nothing: it catches up on every style, not only its own.
    (tmp_path / "empty").mkdir()
    other = make_service()
    assert other.import_path(tmp_path / "empty", None) == []
    assert "while the folder was away" in path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- two styles, one file


def test_a_style_folder_linked_to_another_styles_folder_is_refused_and_rebuild_reports_why(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    service = make_service(out)
    service.ledger.start.request(1, "V1", parameters={"learning_rate": 0.0001})
    service.catch_up()
    first = service.files.path_for(1)
    style_1 = first.read_bytes()
    (out / "2").symlink_to(out / "1", target_is_directory=True)
    service.ledger.start.request(2, "V1", parameters={"learning_rate": 0.0002})
    service.ledger.start.request(3, "V1", parameters={"learning_rate": 0.0003})

    result = service.rebuild()

    assert result.failed == [2] and result.styles_written == [1, 3]
    assert "file of style 1" in result.errors[2]
    assert first.read_bytes() == style_1
    assert service.files.path_for(3).exists()
    assert list(first.parent.glob("*.bak")) == []
    assert service.files.read_mark() is None
