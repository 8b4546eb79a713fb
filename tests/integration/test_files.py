"""The projection's file side on a real filesystem (tmp_path)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing
import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest

import loraledger.adapters.atomic_files as atomic_files
from loraledger.adapters.file_state import FileState
from loraledger.adapters.files import (
    DEFAULT_LAYOUT,
    FolderMissing,
    LayoutError,
    ProjectionFileWriter,
    WriteResult,
    resolve_style_path,
)

PICK_LAYOUT = "resources/style_images/{style_id}_*/training_versions.json"


def doc(n: int, size: int = 50) -> str:
    versions = [{"id": f"v{n}-{i}", "name": f"V{i}", "isGood": i % 2 == 0} for i in range(size)]
    return json.dumps({"versions": versions}, indent=2)


def state_for(output_dir: Path | str) -> Path:
    """The state folder the tests give a writer: beside its output folder, never inside it."""
    return Path(output_dir).parent / f"{Path(output_dir).name}.state"


def backups_in(folder: Path) -> list[Path]:
    """Backups kept of the file in `folder` (in the state folder, never beside the file)."""
    state = FileState(state_for(folder.parent), folder.parent)
    return sorted((state.root / "backups" / folder.name).glob("*.bak"))


def record_of(path: Path, output_dir: Path | None = None) -> Path:
    """The writer's record of `path` (in the state folder; the output folder is its grandparent
    in the default layout)."""
    output = output_dir or path.parent.parent
    return FileState(state_for(output), output).record_path(path)


def sidecar_digest(path: Path) -> str:
    """The record's first field (then come the log position and the style, when known)."""
    return record_of(path).read_text().split()[0]


# --------------------------------------------------------------------------- basic writes


def test_first_write_creates_parent_folders_and_the_exact_utf8_bytes(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    text = '{\n  "name": "café ✓"\n}'
    result = writer.write(7, text)
    path = tmp_path / "7" / "training_versions.json"
    assert result == WriteResult(path=path, changed=True, backup=None)
    assert path.read_bytes() == text.encode("utf-8")
    assert writer.read(7) == text.encode("utf-8")
    assert writer.path_for(7) == path


def test_read_returns_none_when_the_file_does_not_exist(tmp_path: Path) -> None:
    assert ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path)).read(3) is None


def test_sidecar_records_sha256_of_the_bytes_written(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    result = writer.write(1, "hello")
    assert sidecar_digest(result.path) == "sha256:" + hashlib.sha256(b"hello").hexdigest()


def test_atomic_replace_leaves_no_temp_files(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    for n in range(20):
        writer.write(1, doc(n))
    names = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert names == ["training_versions.json"]  # the writer's records live in the state folder


def test_failed_write_removes_its_temp_file_and_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, "old").path

    def failing_rename(src: object, dst: object, flags: int) -> int:
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic_files, "rename2", failing_rename)
    with pytest.raises(OSError, match="disk on fire"):
        writer.write(1, "new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_write_fsyncs_the_temp_file_before_replace_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, "old").path
    events: list[str] = []
    real_fsync, real_replace, real_rename2 = os.fsync, os.replace, atomic_files.rename2

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(f"replace:{Path(dst).name}")
        real_replace(src, dst)

    def rename2(src: Path, dst: Path, flags: int) -> int:
        events.append(f"exchange:{Path(dst).name}")
        return real_rename2(src, dst, flags)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(atomic_files, "rename2", rename2)
    writer.write(1, "new")
    assert events[:3] == ["fsync-file", f"exchange:{path.name}", "fsync-dir"]
    # then the state folder's copy of the bytes written and the record, each atomically
    assert events[3:] == [
        "fsync-file",
        f"replace:{path.name}.written",
        "fsync-dir",
        "fsync-file",
        f"replace:{path.name}.mark",
        "fsync-dir",
    ]


def test_new_file_gets_normal_permissions_not_the_private_temp_file_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = (
            ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path)).write(1, "x").path
        )
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_rewrite_keeps_the_existing_file_permissions(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, "a").path
    path.chmod(0o640)
    writer.write(1, "b")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_reader_never_sees_partial_or_invalid_json_during_2000_rewrites(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    docs = [doc(0, size=400).encode(), doc(1, size=300).encode()]  # different lengths on purpose
    path = writer.write(1, docs[0].decode()).path
    stop = threading.Event()
    bad: list[bytes] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            data = path.read_bytes()
            reads += 1
            if data not in docs:
                bad.append(data)
                json.loads(data)  # raises on a torn file; recorded above either way

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(2000):
            assert writer.write(1, docs[(n + 1) % 2].decode()).changed
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert reads > 100
    assert backups_in(path.parent) == []


# --------------------------------------------------------------------------- external edits


def test_external_edit_is_backed_up_with_the_edited_bytes_and_reported(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, doc(1)).path
    edited = doc(1).replace('"V0"', '"V0 (hand fix)"').encode()
    path.write_bytes(edited)

    result = writer.write(1, doc(2))

    assert result.changed is True
    assert result.backup is not None
    assert result.backup.is_relative_to(state_for(tmp_path))  # never beside the file
    assert result.backup.name.startswith("training_versions.json.external-")
    assert result.backup.name.endswith("Z.bak")
    stamp = result.backup.name.removeprefix("training_versions.json.external-")[: -len("Z.bak")]
    assert len(stamp) == len("20251014T111028123456") and stamp[8] == "T"
    assert result.backup.read_bytes() == edited
    assert path.read_text() == doc(2)
    assert backups_in(path.parent) == [result.backup]


def test_rewriting_our_own_output_makes_no_backup(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    writer.write(1, doc(1))
    result = writer.write(1, doc(2))
    assert result.changed is True
    assert result.backup is None
    assert backups_in(result.path.parent) == []


def test_no_rewrite_and_no_backup_when_file_already_has_the_new_text(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, doc(1)).path
    inode = path.stat().st_ino

    result = writer.write(1, doc(1))

    assert result == WriteResult(path=path, changed=False, backup=None)
    assert path.stat().st_ino == inode  # not replaced
    assert backups_in(path.parent) == []


def test_external_edit_equal_to_the_new_text_is_accepted_without_backup(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, doc(1)).path
    path.write_text(doc(2))
    result = writer.write(1, doc(2))
    assert result.changed is False
    assert result.backup is None
    assert sidecar_digest(path) == "sha256:" + hashlib.sha256(doc(2).encode()).hexdigest()
    # The sidecar was updated, so the next write treats the file as ours.
    assert writer.write(1, doc(3)).backup is None


def test_first_write_over_foreign_file_with_different_content_makes_backup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "1" / "training_versions.json"
    path.parent.mkdir()
    path.write_text(doc(99))  # left by the legacy system: no sidecar

    result = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path)).write(1, doc(1))

    assert result.changed is True
    assert result.backup is not None
    assert result.backup.read_text() == doc(99)
    assert path.read_text() == doc(1)


def test_first_write_over_foreign_file_with_same_content_adopts_it_without_backup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "1" / "training_versions.json"
    path.parent.mkdir()
    path.write_text(doc(1))

    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    result = writer.write(1, doc(1))

    assert result == WriteResult(path=path, changed=False, backup=None)
    assert writer.write(1, doc(2)).backup is None


def test_unreadable_sidecar_counts_as_missing_so_the_file_is_backed_up(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, doc(1)).path
    record_of(path).write_text("garbage")
    result = writer.write(1, doc(2))
    assert result.backup is not None
    assert result.backup.read_text() == doc(1)


def test_backup_never_overwrites_an_existing_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic_files, "backup_stamp", lambda: "20251014T111028123456Z")
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, "ours 1").path
    path.write_text("edit 1")
    first = writer.write(1, "ours 2").backup
    path.write_text("edit 2")
    second = writer.write(1, "ours 3").backup

    assert first is not None and second is not None
    assert first != second
    assert first.read_text() == "edit 1"
    assert second.read_text() == "edit 2"
    assert first.name == "training_versions.json.external-20251014T111028123456Z.bak"


# --------------------------------------------------------------------------- concurrency


def _hold_lock_then_release(lock_path: Path, held: threading.Event, release: threading.Event) -> None:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.set()
        release.wait(10)
    finally:
        os.close(fd)


def test_write_waits_for_the_lock_held_by_another_writer(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, "before").path
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=_hold_lock_then_release,
        args=(FileState(state_for(tmp_path), tmp_path).lock_path(path), held, release),
    )
    holder.start()
    assert held.wait(10)
    blocked = threading.Thread(target=writer.write, args=(1, "after"))
    blocked.start()
    time.sleep(0.3)
    assert path.read_text() == "before"  # still waiting for the lock
    release.set()
    blocked.join(10)
    holder.join(10)
    assert path.read_text() == "after"


def _write_many(output_dir: str, worker: int, count: int) -> None:
    writer = ProjectionFileWriter(Path(output_dir), DEFAULT_LAYOUT, state_dir=state_for(Path(output_dir)))
    for n in range(count):
        result = writer.write(1, f"worker {worker} write {n}\n" * 50)
        assert result.backup is None, result


def test_concurrent_writer_processes_never_mistake_each_other_for_external_edits(
    tmp_path: Path,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    path = tmp_path / "1" / "training_versions.json"
    assert backups_in(path.parent) == []
    assert sidecar_digest(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_writer_threads_never_mistake_each_other_for_external_edits(
    tmp_path: Path,
) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    results: list[WriteResult] = []

    def run(worker: int) -> None:
        for n in range(200):
            results.append(writer.write(1, f"thread {worker} write {n}\n" * 50))

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 800
    assert [r for r in results if r.backup is not None] == []
    path = tmp_path / "1" / "training_versions.json"
    assert sidecar_digest(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- layout


def test_default_layout_puts_the_file_in_a_folder_named_after_the_style(tmp_path: Path) -> None:
    assert resolve_style_path(tmp_path, DEFAULT_LAYOUT, 42) == (
        tmp_path.resolve() / "42" / "training_versions.json"
    )


def test_style_id_placeholder_is_substituted_inside_segments(tmp_path: Path) -> None:
    path = resolve_style_path(tmp_path, "styles/style_{style_id}/v{style_id}.json", 5)
    assert path == tmp_path.resolve() / "styles" / "style_5" / "v5.json"


def test_pick_segment_finds_the_existing_style_folder_not_one_with_a_longer_id(
    tmp_path: Path,
) -> None:
    images = tmp_path / "resources" / "style_images"
    for name in ["11_other", "10_x", "12_x", "1_ink_intensity", "100_dark"]:
        (images / name).mkdir(parents=True)
    path = resolve_style_path(tmp_path, PICK_LAYOUT, 1)
    assert path == images.resolve() / "1_ink_intensity" / "training_versions.json"


def test_pick_segment_never_picks_11_foo_for_style_1(tmp_path: Path) -> None:
    images = tmp_path / "resources" / "style_images"
    (images / "11_foo").mkdir(parents=True)
    (images / "1foo").mkdir()
    with pytest.raises(FolderMissing, match="style 1 has no 1_\\* folder"):
        resolve_style_path(tmp_path, PICK_LAYOUT, 1)
    (images / "1_ink").mkdir()
    assert (
        resolve_style_path(tmp_path, PICK_LAYOUT, 1) == images.resolve() / "1_ink" / "training_versions.json"
    )


def test_pick_segment_never_makes_a_bare_id_folder_the_file_waits_for_its_folder(tmp_path: Path) -> None:
    images = tmp_path / "resources" / "style_images"
    (images / "1").mkdir(parents=True)  # in the deployment's tree: assessments, not the style's file
    writer = ProjectionFileWriter(tmp_path, PICK_LAYOUT, state_dir=state_for(tmp_path))

    with pytest.raises(FolderMissing):
        writer.write(1, "x")

    assert list((images / "1").iterdir()) == [] and sorted(p.name for p in images.iterdir()) == ["1"]
    assert writer.waiting_reason(1) is not None and "1_*" in str(writer.waiting_reason(1))
    (images / "1_ink").mkdir()
    assert writer.write(1, "x").path == images.resolve() / "1_ink" / "training_versions.json"
    assert writer.waiting_reason(1) is None


FALLBACK = "../../data/training_versions/{style_id}.json"


def test_a_style_without_its_folder_goes_to_the_fallback_file_which_goes_when_the_folder_appears(
    tmp_path: Path,
) -> None:
    images = tmp_path / "resources" / "style_images"
    images.mkdir(parents=True)
    layout = "{style_id}_*/training_versions.json"
    writer = ProjectionFileWriter(images, layout, state_dir=state_for(tmp_path), fallback=FALLBACK)
    fallback = tmp_path.resolve() / "data" / "training_versions" / "7.json"

    assert writer.write(7, "first").path == fallback
    assert fallback.read_text() == "first" and list(images.iterdir()) == []
    assert writer.waiting_reason(7) is None

    (images / "7_watercolor").mkdir()
    assert writer.write(7, "second").path == images.resolve() / "7_watercolor" / "training_versions.json"
    assert not fallback.exists()  # the copy the service wrote is gone, once the folder has the file


def test_a_fallback_file_someone_else_changed_is_left_when_the_folder_appears(tmp_path: Path) -> None:
    images = tmp_path / "resources" / "style_images"
    images.mkdir(parents=True)
    layout = "{style_id}_*/training_versions.json"
    writer = ProjectionFileWriter(images, layout, state_dir=state_for(tmp_path), fallback=FALLBACK)
    fallback = writer.write(7, "first").path
    fallback.write_text("the UI's own change")

    (images / "7_watercolor").mkdir()
    writer.write(7, "second")

    assert fallback.read_text() == "the UI's own change"


def test_pick_segment_takes_the_first_sorted_match_and_ignores_plain_files(
    tmp_path: Path,
) -> None:
    images = tmp_path / "resources" / "style_images"
    images.mkdir(parents=True)
    (images / "3_a_file").write_text("not a folder")
    (images / "3_zeta").mkdir()
    (images / "3_beta").mkdir()
    path = resolve_style_path(tmp_path, PICK_LAYOUT, 3)
    assert path.parent.name == "3_beta"


def test_writer_with_pick_layout_writes_into_the_existing_style_folder(tmp_path: Path) -> None:
    folder = tmp_path / "resources" / "style_images" / "1_ink_intensity"
    folder.mkdir(parents=True)
    result = ProjectionFileWriter(tmp_path, PICK_LAYOUT, state_dir=state_for(tmp_path)).write(1, "x")
    assert result.path == folder.resolve() / "training_versions.json"
    assert not (tmp_path / "resources" / "style_images" / "1").exists()


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("../x/{style_id}.json", "'..'"),
        ("a/../../{style_id}.json", "'..'"),
        ("/abs/{style_id}", "absolute"),
        ("", "non-empty"),
        ("a//{style_id}.json", "empty path segment"),
        ("{style_id}/", "empty path segment"),
        ("./{style_id}.json", "'.'"),
        ("{style_id}\\x.json", "backslash"),
        ("{style_id}_*", "cannot be the file name"),
        ("*/{style_id}.json", "only allowed"),
        ("{style_id}*/x.json", "only allowed"),
        ("{styleid}/x.json", "unknown placeholder"),
    ],
)
def test_bad_layouts_are_rejected_with_a_clear_message(tmp_path: Path, layout: str, message: str) -> None:
    with pytest.raises(LayoutError, match=re.escape(message)):
        resolve_style_path(tmp_path, layout, 1)
    with pytest.raises(LayoutError, match=re.escape(message)):
        ProjectionFileWriter(tmp_path, layout, state_dir=state_for(tmp_path))


def test_layout_errors_are_value_errors() -> None:
    assert issubclass(LayoutError, ValueError)


def test_symlinked_folder_pointing_outside_output_dir_is_rejected(tmp_path: Path) -> None:
    output_dir, outside = tmp_path / "out", tmp_path / "outside"
    output_dir.mkdir()
    outside.mkdir()
    (output_dir / "1").symlink_to(outside, target_is_directory=True)

    with pytest.raises(LayoutError, match="not inside"):
        resolve_style_path(output_dir, DEFAULT_LAYOUT, 1)
    with pytest.raises(LayoutError, match="not inside"):
        ProjectionFileWriter(output_dir, DEFAULT_LAYOUT, state_dir=state_for(output_dir)).write(1, "x")
    assert list(outside.iterdir()) == []


def test_pick_segment_does_not_follow_a_symlinked_style_folder_outside(tmp_path: Path) -> None:
    output_dir, outside = tmp_path / "out", tmp_path / "outside"
    (output_dir / "resources" / "style_images").mkdir(parents=True)
    outside.mkdir()
    (output_dir / "resources" / "style_images" / "1_evil").symlink_to(outside)
    with pytest.raises(LayoutError, match="not inside"):
        resolve_style_path(output_dir, PICK_LAYOUT, 1)


def test_symlinked_file_pointing_outside_output_dir_is_rejected(tmp_path: Path) -> None:
    output_dir, outside = tmp_path / "out", tmp_path / "secret.json"
    (output_dir / "1").mkdir(parents=True)
    outside.write_text("keep")
    (output_dir / "1" / "training_versions.json").symlink_to(outside)
    with pytest.raises(LayoutError, match="not inside"):
        ProjectionFileWriter(output_dir, DEFAULT_LAYOUT, state_dir=state_for(output_dir)).write(1, "x")
    assert outside.read_text() == "keep"


def test_symlink_that_stays_inside_output_dir_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "1").symlink_to(tmp_path / "real", target_is_directory=True)
    path = resolve_style_path(tmp_path, DEFAULT_LAYOUT, 1)
    assert path == tmp_path.resolve() / "real" / "training_versions.json"


def test_output_dir_given_through_a_symlink_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    result = ProjectionFileWriter(
        tmp_path / "link", DEFAULT_LAYOUT, state_dir=state_for(tmp_path / "link")
    ).write(1, "x")
    assert result.path == tmp_path.resolve() / "real" / "1" / "training_versions.json"


@pytest.mark.parametrize("style_id", [-1, True])
def test_negative_or_bool_style_ids_are_rejected(tmp_path: Path, style_id: int) -> None:
    with pytest.raises((ValueError, TypeError)):
        resolve_style_path(tmp_path, DEFAULT_LAYOUT, style_id)


def test_a_layout_without_the_style_id_is_refused_since_every_style_would_share_one_file(
    tmp_path: Path,
) -> None:
    with pytest.raises(LayoutError, match="every style would share one file"):
        ProjectionFileWriter(tmp_path, "shared/training_versions.json", state_dir=state_for(tmp_path))


# --------------------------------------------------------------------------- one file, one style


def test_a_style_folder_linked_to_another_styles_folder_is_refused_and_the_other_file_kept(
    tmp_path: Path,
) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    first = writer.write(1, doc(1), "log:1").path
    (tmp_path / "2").symlink_to(tmp_path / "1", target_is_directory=True)

    with pytest.raises(LayoutError, match="which is the file of style 1; style 2 is not written"):
        writer.write(2, doc(2), "log:2")

    assert first.read_text() == doc(1)
    assert backups_in(first.parent) == []
    assert writer.write(1, doc(3), "log:3").backup is None  # style 1 goes on as before


def test_a_picked_style_folder_linked_to_another_styles_folder_is_refused(tmp_path: Path) -> None:
    images = tmp_path / "resources" / "style_images"
    (images / "1_ink").mkdir(parents=True)
    (images / "2_alias").symlink_to(images / "1_ink", target_is_directory=True)
    writer = ProjectionFileWriter(tmp_path, PICK_LAYOUT, state_dir=state_for(tmp_path))
    with pytest.raises(LayoutError, match="file of style 1"):
        writer.write(2, doc(2))
    assert writer.write(1, doc(1)).path == images.resolve() / "1_ink" / "training_versions.json"


def test_a_style_file_linked_to_another_styles_file_is_refused(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    first = writer.write(1, doc(1)).path
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "training_versions.json").symlink_to(first)
    with pytest.raises(LayoutError, match="file of style 1"):
        writer.write(2, doc(2))
    assert first.read_text() == doc(1)


def test_two_styles_linked_to_one_folder_named_for_neither_write_only_the_first_owner(
    tmp_path: Path,
) -> None:
    (tmp_path / "shared").mkdir()
    for style_id in (1, 2):
        (tmp_path / str(style_id)).symlink_to(tmp_path / "shared", target_is_directory=True)
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, doc(1), "log:1").path
    assert path == tmp_path.resolve() / "shared" / "training_versions.json"

    with pytest.raises(LayoutError, match="was written for style 1"):
        writer.write(2, doc(2), "log:2")
    with pytest.raises(LayoutError, match="was written for style 1"):  # and from another process
        ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path)).write(
            2, doc(2), "log:2"
        )

    assert path.read_text() == doc(1)
    assert writer.write(1, doc(3), "log:3").changed is True


# --------------------------------------------------------------------------- the log is the truth


def test_a_mark_ahead_of_the_log_makes_the_file_rewritten_and_its_content_kept(tmp_path: Path) -> None:
    """A backup of the store was restored: the files' marks are ahead of the log's head."""
    head = ["log:9"]
    writer = ProjectionFileWriter(
        tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path), log_head=lambda: head[0]
    )
    path = writer.write(1, doc(9), "log:9").path
    head[0] = "log:5"  # the restored log ends at 5; its next event gets id 6

    result = writer.write(1, doc(6), "log:6")

    assert result.changed is True and result.superseded is False
    assert path.read_text() == doc(6)
    assert result.backup is not None and result.backup.read_text() == doc(9)
    assert "position:log:6" in record_of(path).read_text()


def test_a_mark_ahead_of_the_writer_but_in_the_log_is_a_newer_file_and_left_alone(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(
        tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path), log_head=lambda: "log:9"
    )
    path = writer.write(1, doc(9), "log:9").path

    result = writer.write(1, doc(6), "log:6")  # a writer that has not read events 7 to 9 yet

    assert result == WriteResult(path=path, changed=False, backup=None, superseded=True)
    assert path.read_text() == doc(9)


def test_a_file_written_from_another_log_is_rewritten_and_its_content_kept(tmp_path: Path) -> None:
    writer = ProjectionFileWriter(
        tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path), log_head=lambda: "new:3"
    )
    path = writer.write(1, doc(1), "old:40").path

    result = writer.write(1, doc(2), "new:3")

    assert result.changed is True
    assert result.backup is not None and result.backup.read_text() == doc(1)
    assert path.read_text() == doc(2)


def test_a_document_written_without_a_position_carries_no_position_in_its_mark(tmp_path: Path) -> None:
    """What `replay` writes is an earlier state: its mark must never make it look current."""
    writer = ProjectionFileWriter(tmp_path, DEFAULT_LAYOUT, state_dir=state_for(tmp_path))
    path = writer.write(1, doc(1), "log:9").path
    sidecar = record_of(path)

    writer.write(1, doc(0), None)
    assert "position:" not in sidecar.read_text()
    writer.write(1, doc(0), None)  # the same bytes again: the mark still says no position
    assert "position:" not in sidecar.read_text()
    assert writer.write(1, doc(2), "log:3").changed is True  # a live writer at any position replaces it
