"""Under `serve`: a change to a projection file wakes the writer at once (CONTRACT §12: an edit is
noticed within 2 seconds). The writer also looks at every file once a second, so a watcher that
misses an event (a network filesystem, a full inotify queue) only makes it a little slower.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
DEBOUNCE_MS = 50


class FileWatcher:
    """Calls `changed()` whenever a JSON file under `folder` changes (temp files are hidden ones)."""

    def __init__(self, folder: Path, changed: Callable[[], None]) -> None:
        self.folder = folder
        self.changed = changed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            log.warning(
                "not watching %s for edits (%s); looking at the files every second", self.folder, error
            )
            return
        self._thread = threading.Thread(target=self._run, name="projection-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from watchfiles import watch
        except ImportError:  # pragma: no cover - a dependency; the periodic look still works
            log.warning("watchfiles is not installed; looking at the files every second")
            return
        try:
            for _ in watch(
                self.folder,
                watch_filter=_is_projection_file,
                stop_event=self._stop,
                debounce=DEBOUNCE_MS,
                step=DEBOUNCE_MS,
                raise_interrupt=False,
            ):
                self.changed()
        except Exception as error:  # the folder went away, too many watches: the periodic look remains
            log.warning(
                "stopped watching %s for edits (%s); looking at the files every second", self.folder, error
            )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _is_projection_file(_change: object, path: str) -> bool:
    name = Path(path).name
    return name.endswith(".json") and not name.startswith(".")
