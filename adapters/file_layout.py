"""Where each style's ``training_versions.json`` lives: a layout such as
``{style_id}/training_versions.json`` or ``resources/style_images/{style_id}_*/training_versions.json``
resolved to a path that is guaranteed to stay inside the output directory (symlinks included).

A path that is another style's file (a link ``2 -> 1`` in the output folder) is refused too: each
file belongs to exactly one style.

A ``{style_id}_*`` segment with no matching folder never makes a bare ``<id>`` folder (in the tree
of the deployment being replaced those hold other content): it is :class:`FolderMissing`, and the
writer uses the fallback path when one is set (:func:`resolve_fallback`).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

__all__ = [
    "DEFAULT_LAYOUT",
    "FolderMissing",
    "LayoutError",
    "named_owner",
    "parse_fallback",
    "parse_layout",
    "resolve_fallback",
    "resolve_segments",
    "resolve_style_path",
]

DEFAULT_LAYOUT = "{style_id}/training_versions.json"

_PLACEHOLDER = "{style_id}"
_PICK_SEGMENT = "{style_id}_*"
_ID_PATTERN = "(0|[1-9][0-9]*)"  # how a style id is spelled in a path (str(int))


class LayoutError(ValueError):
    """A layout is malformed, or resolves to a path outside the output directory."""


class FolderMissing(LayoutError):
    """A ``{style_id}_*`` segment found no folder for the style: its file waits for one."""

    def __init__(self, style_id: int, parent: Path) -> None:
        super().__init__(f"style {style_id} has no {style_id}_* folder in {parent}: its file waits for one")
        self.style_id = style_id


def parse_layout(layout: str) -> tuple[str, ...]:
    """Check a layout's syntax (independent of any style id) and split it into segments."""
    if not isinstance(layout, str) or not layout:
        raise LayoutError("layout must be a non-empty relative path such as " + DEFAULT_LAYOUT)
    if layout.startswith("/"):
        raise LayoutError(f"layout {layout!r} is absolute; it must be relative to the output directory")
    if "\\" in layout or "\x00" in layout:
        raise LayoutError(f"layout {layout!r} may not contain backslashes or NUL; use '/'")
    segments = tuple(layout.split("/"))
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment == "":
            raise LayoutError(f"layout {layout!r} has an empty path segment")
        if segment in (".", ".."):
            raise LayoutError(f"layout {layout!r} may not contain a {segment!r} segment")
        if segment == _PICK_SEGMENT:
            if i == last:
                raise LayoutError(
                    f"layout {layout!r}: {_PICK_SEGMENT} picks a directory and cannot be the file name"
                )
            continue
        rest = segment.replace(_PLACEHOLDER, "")
        if "*" in rest:
            raise LayoutError(
                f"layout {layout!r}: '*' is only allowed in a segment that is exactly {_PICK_SEGMENT}"
            )
        if "{" in rest or "}" in rest:
            raise LayoutError(
                f"layout {layout!r}: unknown placeholder in {segment!r}; only {_PLACEHOLDER} is supported"
            )
    if not any(_PLACEHOLDER in segment for segment in segments):
        raise LayoutError(f"layout {layout!r} has no {_PLACEHOLDER}: every style would share one file")
    return segments


def _pick_style_dir(parent: Path, style_id: str) -> str | None:
    """First (sorted) directory name in ``parent`` starting with ``"<style_id>_"``, if any."""
    prefix = style_id + "_"
    try:
        with os.scandir(parent) as entries:
            names = sorted(e.name for e in entries if e.name.startswith(prefix) and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return None
    return names[0] if names else None


def _check_style_id(style_id: int) -> str:
    if isinstance(style_id, bool) or not isinstance(style_id, int):
        raise TypeError(f"style_id must be an int, not {type(style_id).__name__}")
    if style_id < 0:
        raise ValueError(f"style_id must not be negative, got {style_id}")
    return str(style_id)


def resolve_segments(output_dir: Path, layout: str, segments: tuple[str, ...], style_id: int) -> Path:
    sid = _check_style_id(style_id)
    root = Path(output_dir).resolve()
    current = root
    for segment in segments:
        if segment == _PICK_SEGMENT:
            picked = _pick_style_dir(current, sid)
            if picked is None:
                raise FolderMissing(style_id, current)
            name = picked
        else:
            name = segment.replace(_PLACEHOLDER, sid)
        current = current / name
    resolved = current.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise LayoutError(
            f"layout {layout!r} for style {style_id} resolves to {resolved}, which is not inside"
            f" the output directory {root}"
        )
    owner = named_owner(segments, resolved.relative_to(root).parts)
    if owner is not None and owner != style_id:
        raise LayoutError(
            f"the file of style {style_id} ({current}) leads through a link to {resolved},"
            f" which is the file of style {owner}; style {style_id} is not written there"
        )
    return resolved


@lru_cache(maxsize=64)
def _segment_patterns(segments: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for segment in segments:
        if segment == _PICK_SEGMENT:  # "<id>_<anything>", or the bare "<id>" when none existed
            patterns.append(re.compile(_ID_PATTERN + "(?:_.*)?", re.DOTALL))
        else:
            literal = (re.escape(part) for part in segment.split(_PLACEHOLDER))
            patterns.append(re.compile(_ID_PATTERN.join(literal), re.DOTALL))
    return tuple(patterns)


def named_owner(segments: tuple[str, ...], parts: tuple[str, ...]) -> int | None:
    """The style whose own path (the layout, no link followed) is ``parts``, if any.

    ``1/training_versions.json`` is style 1's file whoever reaches it: a link ``2 -> 1`` must
    not let style 2 overwrite it.
    """
    if len(parts) != len(segments):
        return None
    ids: set[str] = set()
    for pattern, part in zip(_segment_patterns(segments), parts, strict=True):
        match = pattern.fullmatch(part)
        if match is None:
            return None
        ids.update(group for group in match.groups() if group is not None)
    return int(ids.pop()) if len(ids) == 1 else None


def resolve_style_path(output_dir: Path, layout: str, style_id: int) -> Path:
    """Return the resolved path of ``style_id``'s projection file under ``output_dir``.

    ``layout`` is relative and split on ``/``. ``{style_id}`` in a segment is replaced by the id.
    A segment that is exactly ``{style_id}_*`` names the first (sorted) existing directory whose
    name starts with ``"<style_id>_"`` (so ``1_*`` finds ``1_ink_intensity`` but never
    ``11_other``); when there is none it raises :class:`FolderMissing`.

    Raises :class:`LayoutError` for absolute layouts, empty, ``.`` or ``..`` segments, unknown
    placeholders or wildcards, and for any result outside ``output_dir`` once symlinks are
    resolved.
    """
    return resolve_segments(output_dir, layout, parse_layout(layout), style_id)


def parse_fallback(template: str) -> str:
    """Check a fallback path template: ``{style_id}`` once or more, no other placeholder."""
    if not template or "\x00" in template:
        raise LayoutError("the fallback is a path such as ../../data/training_versions/{style_id}.json")
    if _PLACEHOLDER not in template:
        raise LayoutError(f"fallback {template!r} has no {_PLACEHOLDER}: every style would share one file")
    rest = template.replace(_PLACEHOLDER, "")
    if "{" in rest or "}" in rest or "*" in rest:
        raise LayoutError(f"fallback {template!r}: only the placeholder {_PLACEHOLDER} is supported")
    if template.endswith("/"):
        raise LayoutError(f"fallback {template!r} names a folder; it must name the file")
    return template


def resolve_fallback(output_dir: Path, template: str, style_id: int) -> Path:
    """The fallback file of a style whose folder is missing: the template, absolute or relative to
    the output directory (it may lead out of it: the deployment's `data/training_versions/<id>.json`
    sits beside the style folders' tree, not in it)."""
    sid = _check_style_id(style_id)
    joined = os.path.join(os.path.abspath(output_dir), template.replace(_PLACEHOLDER, sid))
    return Path(os.path.normpath(joined))
