"""Where each style's (or actor's) ``training_versions.json`` lives: a layout such as
``{style_id}/training_versions.json``, ``resources/style_images/{style_id}_*/training_versions.json``
or ``data/actors/{actor_id:04d}_*/training_versions.json`` resolved to a path that is guaranteed to
stay inside the output directory (symlinks included).

A layout names one subject kind's id: ``{style_id}`` or ``{actor_id}``, optionally with a format spec
that pads it with zeros (``{actor_id:04d}``: actor 6's folder starts with ``0006_``).
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
    "DEFAULT_ACTOR_LAYOUT",
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
DEFAULT_ACTOR_LAYOUT = "actors/{actor_id}/training_versions.json"

# `{style_id}`, `{actor_id}`, or either padded with zeros to a width of 2-9 digits (`{actor_id:04d}`).
_ANY_PLACEHOLDER = re.compile(r"\{(style_id|actor_id)(?::0([2-9])d)?\}")
_ID_PATTERN = "(0|[1-9][0-9]*)"  # how a style id is spelled in a path (str(int))


def _id_pattern(width: str | None) -> str:
    """How an id is spelled in a path: `str(id)`, or padded to `width` digits."""
    if width is None:
        return _ID_PATTERN
    return f"([0-9]{{{width}}}|[1-9][0-9]{{{width},}})"


def _fill(segment: str, subject_id: int) -> str:
    """The segment with its placeholders replaced by the id (padded where the spec says so)."""
    return _ANY_PLACEHOLDER.sub(
        lambda found: format(subject_id, f"0{found[2]}d") if found[2] else str(subject_id), segment
    )


def _pick_placeholder(segment: str) -> str | None:
    """The placeholder of a segment that picks a folder (`{style_id}_*`, `{actor_id:04d}_*`)."""
    if not segment.endswith("_*"):
        return None
    found = _ANY_PLACEHOLDER.fullmatch(segment[:-2])
    return found[0] if found else None


def _kind_word(segments: tuple[str, ...]) -> str:
    """`style` or `actor`: whose files the layout places (for messages)."""
    for segment in segments:
        found = _ANY_PLACEHOLDER.search(segment)
        if found:
            return found[1].removesuffix("_id")
    return "style"


class LayoutError(ValueError):
    """A layout is malformed, or resolves to a path outside the output directory."""


class FolderMissing(LayoutError):
    """A ``{style_id}_*`` (or ``{actor_id:04d}_*``) segment found no folder for the subject: its
    file waits for one."""

    def __init__(self, style_id: int, parent: Path, spelled: str | None = None, kind: str = "style") -> None:
        pattern = f"{spelled if spelled is not None else style_id}_*"
        super().__init__(f"{kind} {style_id} has no {pattern} folder in {parent}: its file waits for one")
        self.style_id = style_id


def parse_layout(layout: str, id_name: str = "style_id") -> tuple[str, ...]:
    """Check a layout's syntax (independent of any id) and split it into segments; `id_name`
    is the placeholder it must use (`style_id`, or `actor_id` for the actors' layout)."""
    placeholder, example = "{" + id_name + "}", DEFAULT_LAYOUT.replace("style_id", id_name)
    if not isinstance(layout, str) or not layout:
        raise LayoutError("layout must be a non-empty relative path such as " + example)
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
        names = {found[1] for found in _ANY_PLACEHOLDER.finditer(segment)}
        if names - {id_name}:
            raise LayoutError(
                f"layout {layout!r}: unknown placeholder in {segment!r}; only {placeholder} is supported"
            )
        if _pick_placeholder(segment) is not None:
            if i == last:
                raise LayoutError(
                    f"layout {layout!r}: {placeholder}_* picks a directory and cannot be the file name"
                )
            continue
        rest = _ANY_PLACEHOLDER.sub("", segment)
        if "*" in rest:
            raise LayoutError(
                f"layout {layout!r}: '*' is only allowed in a segment that is exactly {placeholder}_*"
            )
        if "{" in rest or "}" in rest:
            raise LayoutError(
                f"layout {layout!r}: unknown placeholder in {segment!r}; only {placeholder} is supported"
                " (optionally padded: {" + id_name + ":04d})"
            )
    if not any(_ANY_PLACEHOLDER.search(segment) for segment in segments):
        kind = id_name.removesuffix("_id")
        raise LayoutError(f"layout {layout!r} has no {placeholder}: every {kind} would share one file")
    return segments


def _pick_style_dir(parent: Path, spelled_id: str) -> str | None:
    """First (sorted) directory name in ``parent`` starting with ``"<id as spelled>_"``, if any."""
    prefix = spelled_id + "_"
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
    _check_style_id(style_id)
    kind = _kind_word(segments)
    root = Path(output_dir).resolve()
    current = root
    for segment in segments:
        picked = _pick_placeholder(segment)
        if picked is not None:
            spelled = _fill(picked, style_id)
            name = _pick_style_dir(current, spelled)
            if name is None:
                raise FolderMissing(style_id, current, spelled, kind)
        else:
            name = _fill(segment, style_id)
        current = current / name
    resolved = current.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise LayoutError(
            f"layout {layout!r} for {kind} {style_id} resolves to {resolved}, which is not inside"
            f" the output directory {root}"
        )
    owner = named_owner(segments, resolved.relative_to(root).parts)
    if owner is not None and owner != style_id:
        raise LayoutError(
            f"the file of {kind} {style_id} ({current}) leads through a link to {resolved},"
            f" which is the file of {kind} {owner}; {kind} {style_id} is not written there"
        )
    return resolved


@lru_cache(maxsize=64)
def _segment_patterns(segments: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for segment in segments:
        picked = _pick_placeholder(segment)
        if picked is not None:  # "<id>_<anything>", or the bare "<id>" when none existed
            found = _ANY_PLACEHOLDER.fullmatch(picked)
            width = found[2] if found else None
            patterns.append(re.compile(_id_pattern(width) + "(?:_.*)?", re.DOTALL))
        else:
            pattern, at = "", 0
            for found in _ANY_PLACEHOLDER.finditer(segment):
                pattern += re.escape(segment[at : found.start()]) + _id_pattern(found[2])
                at = found.end()
            patterns.append(re.compile(pattern + re.escape(segment[at:]), re.DOTALL))
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


_PLACEHOLDER = "{style_id}"  # the fallback names a style (the actors' fallback is not built)


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
