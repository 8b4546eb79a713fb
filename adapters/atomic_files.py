"""Atomic file operations of the projection files: temp file in the same folder, fsync, an atomic
rename (or exchange, so the bytes replaced can be read back), fsync of the folder; backups that
never overwrite; an exclusive ``flock`` shared by processes and threads.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import itertools
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

SETTLE_SECONDS = 0.5

# --------------------------------------------------------------------------- low-level file ops


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_temp(path: Path) -> tuple[int, Path]:
    """Create a new, uniquely named hidden temp file next to ``path`` (mode 0o666 & ~umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new bytes, never a mix."""
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = create_temp(path)
    try:
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def backup_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def write_backup(folder: Path, path: Path, data: bytes) -> Path:
    """Write ``data`` to a new ``<name>.external-<stamp>.bak`` in ``folder``; never overwrite."""
    stamp = backup_stamp()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for n in itertools.count():
        suffix = "" if n == 0 else f"-{n}"
        backup = folder / f"{path.name}.external-{stamp}{suffix}.bak"
        try:
            fd = os.open(backup, flags, 0o666)
        except FileExistsError:
            continue
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(folder)
        return backup
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (shared by processes and threads alike)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock; the lock file stays (deleting it would race)


# --------------------------------------------------------------------------- the swap

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def rename2(source: Path, target: Path, flags: int) -> int:
    """renameat2(2): 0 on success, else the errno (ENOSYS where the call is not available)."""
    if _renameat2 is None:
        return errno.ENOSYS
    if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return 0
    return ctypes.get_errno()


class CreatedMeanwhile(Exception):
    """Someone else created the file between our look and our write."""


def swap_in(path: Path, data: bytes, expect_existing: bool) -> bytes | None:
    """Put ``data`` at ``path`` atomically; returns the bytes it replaced (when the platform lets
    us swap and read them back), so an edit that landed a moment earlier is not lost."""
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = create_temp(path)
    try:
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        flags = _RENAME_EXCHANGE if expect_existing else _RENAME_NOREPLACE
        failed = rename2(tmp, path, flags)
        if failed == errno.EEXIST:
            raise CreatedMeanwhile(str(path))
        if failed == 0 and expect_existing:
            replaced = tmp.read_bytes()  # the exchange put the old file at the temp name
            os.unlink(tmp)
            fsync_dir(path.parent)
            return replaced
        if failed != 0:  # no renameat2 (or not on this filesystem): a plain replace
            os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return None


def once_whole(path: Path, data: bytes) -> bytes:
    """The file once the program writing it has finished: a UI that truncates and writes in place
    is seen half-way now and then; a file still not JSON after a moment is taken as it is."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        try:
            json.loads(data)
            return data
        except ValueError:
            time.sleep(0.02)
            data = read_or_none(path) or b""
    return data
