"""`replay`'s files: each style's file at the path it has in the live tree, under a folder of its own.

The live layout's `{style_id}_*` segment picks a folder that exists only in the live tree, so the
replay folder mirrors the live path (`1_ink_intensity/training_versions.json`) rather than resolving
the layout again in an empty folder. A style whose live file has no place in the tree (its folder is
missing, or it goes to a fallback outside the tree) is written at the layout with the bare id: the
replay folder is the reader's own, and holds nothing else.
"""

from __future__ import annotations

from pathlib import Path

from loraledger.adapters.atomic_files import atomic_write
from loraledger.adapters.file_layout import LayoutError
from loraledger.adapters.files import ProjectionFileWriter

PICK_SEGMENT = "{style_id}_*"


class MirroredFolderSink:
    """The projection's sink for `replay`: no records, no marks, no edit checks."""

    def __init__(self, live: ProjectionFileWriter, out_dir: Path) -> None:
        self.live = live
        self.out_dir = Path(out_dir)

    def relative_path(self, style_id: int) -> Path:
        """Where the style's file is in the live tree, relative to it."""
        live_root = self.live.output_dir.resolve()
        try:
            path = self.live.path_for(style_id)
        except LayoutError:
            path = None
        if path is not None and path.is_relative_to(live_root):
            return path.relative_to(live_root)
        bare = self.live.layout.replace(PICK_SEGMENT, "{style_id}").replace("{style_id}", str(style_id))
        return Path(bare)

    def write(self, style_id: int, text: str, position: str | None) -> Path | None:
        path = self.out_dir / self.relative_path(style_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text.encode("utf-8"))
        return None
