"""The naming rules of subject ids, version names, model names and LoRA file keys, per subject kind.

A style's model name is `style_<id>_v<V>`; an actor's is `actor_<id>_<V>` (CONTRACT §8).

Every parser either returns a value or raises `NameRejected` with a reason a person can act on.
Model names are only ever built from parsed values, so no user text reaches RunPod or S3 unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind

LORA_EXTENSION = ".safetensors"
MAX_NUMBER_DIGITS = 9  # style ids and version numbers beyond a billion are typos or attacks
MAX_VERSION_NUMBER = 10**MAX_NUMBER_DIGITS - 1

_POSITIVE = r"[1-9][0-9]{0,8}"
_STYLE_ID = re.compile(rf"{_POSITIVE}")
_VERSION_NAME = re.compile(rf"[vV]({_POSITIVE})")
# The deployment being replaced wrote `style_1_vV8`; older code wrote `style_1_vv8` and `style_1_v8`.
_MODEL_NAME = re.compile(rf"style_({_POSITIVE})_v([vV]?)({_POSITIVE})")
# A LoRA file name as it may appear inside a URL (any of the three spellings).
# An actor id is not padded in names; the deployment being replaced also wrote `actor_0006_V6`
# (padded as its folders are), `actor_6_v6` and `actor_6_vV6`.
_ACTOR_ID = re.compile(r"0|[1-9][0-9]{0,8}")
_ACTOR_MODEL_NAME = re.compile(rf"actor_(0|[1-9][0-9]{{0,8}}|0[0-9]{{3}})_(vV|vv|v|V)({_POSITIVE})")
LORA_FILE_TOKEN = re.compile(
    rf"(?:style_{_POSITIVE}_v[vV]?|actor_(?:0|[1-9][0-9]{{0,8}}|0[0-9]{{3}})_(?:vV|vv|v|V)){_POSITIVE}\.safetensors"
)
_LOOSE_MODEL_NAME = re.compile(r"style_([^_]*)_v(.*)")
_LOOSE_ACTOR_NAME = re.compile(r"actor_([^_]*)_(.*)")
_JOB_SUFFIX = re.compile(r"-[eu][0-9]+$")
_TEMP_MARKERS = (".tmp", ".part", ".partial", ".crdownload", ".download", "~")


class NameRejected(ValueError):
    """A name that does not follow the rules; `reason` says which rule and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_style_id(text: str | int) -> int:
    """`1`, `82` -> int. Rejects `0`, `01`, `-1`, `abc`, and absurdly long numbers."""
    if isinstance(text, bool):
        raise NameRejected("a style id is a positive integer, not a boolean")
    if isinstance(text, int):
        if text < 1:
            raise NameRejected(f"style id {text} is not a positive integer")
        if len(str(text)) > MAX_NUMBER_DIGITS:
            raise NameRejected(f"style id {text} has more than {MAX_NUMBER_DIGITS} digits")
        return text
    if not _STYLE_ID.fullmatch(text):
        raise NameRejected(
            f"style id {_quote(text)} is not a positive integer without leading zeros "
            f"(at most {MAX_NUMBER_DIGITS} digits)"
        )
    return int(text)


def parse_actor_id(text: str | int) -> int:
    """`6`, `0` -> int (CONTRACT §8: an actor id is a non-negative integer, unpadded in names)."""
    if isinstance(text, bool):
        raise NameRejected("an actor id is a non-negative integer, not a boolean")
    if isinstance(text, int):
        if text < 0:
            raise NameRejected(f"actor id {text} is not a non-negative integer")
        if len(str(text)) > MAX_NUMBER_DIGITS:
            raise NameRejected(f"actor id {text} has more than {MAX_NUMBER_DIGITS} digits")
        return text
    if not _ACTOR_ID.fullmatch(text):
        raise NameRejected(
            f"actor id {_quote(text)} is not a non-negative integer without leading zeros "
            f"(at most {MAX_NUMBER_DIGITS} digits)"
        )
    return int(text)


def parse_subject_id(text: str | int, kind: SubjectKind = STYLE) -> int:
    """A subject's id by its kind's rule: a style id is positive, an actor id may be 0."""
    return parse_actor_id(text) if kind == ACTOR else parse_style_id(text)


def parse_version_name(text: str) -> str:
    """`V8` or `v8` -> `V8`. Anything else (`V08`, `V0`, `8`, `V8a`) is rejected."""
    match = _VERSION_NAME.fullmatch(text)
    if match is None:
        raise NameRejected(
            f"version name {_quote(text)} is not V<n> with n a positive integer without leading zeros"
        )
    return f"V{match.group(1)}"


def version_number(version_name: str) -> int:
    """The n of a canonical `V<n>` (used to order versions newest first)."""
    return int(parse_version_name(version_name)[1:])


def next_version_name(version_names: Iterable[str]) -> str | None:
    """The default name of a style's next version: one above its highest (`V1` for none).

    None once `V999999999` is taken: there is no next number, and taking a free number below the
    highest would make a new version look older than the ones already there.
    """
    highest = max((version_number(name) for name in version_names), default=0)
    return None if highest >= MAX_VERSION_NUMBER else f"V{highest + 1}"


def format_model_name(style_id: int, version_name: str, kind: SubjectKind = STYLE) -> str:
    """The model name sent to RunPod and used as the LoRA file's stem: `style_1_vV8`, `actor_6_V6`."""
    if kind == ACTOR:
        return f"actor_{parse_actor_id(style_id)}_{parse_version_name(version_name)}"
    return f"style_{parse_style_id(style_id)}_v{parse_version_name(version_name)}"


@dataclass(frozen=True, slots=True)
class ModelName:
    """A parsed model name; `spelling` is what was read when it was not the canonical form.

    `style_id` is the subject's id, of the kind `kind` (an actor's id for an actor's model name).
    """

    style_id: int
    version_name: str
    spelling: str | None = None
    kind: SubjectKind = STYLE

    @property
    def canonical(self) -> str:
        return format_model_name(self.style_id, self.version_name, self.kind)

    @property
    def file_name(self) -> str:
        return self.canonical + LORA_EXTENSION

    @property
    def normalisation(self) -> str | None:
        """A note for the decision when a legacy spelling was normalised, else None."""
        if self.spelling is None:
            return None
        return f"legacy spelling {self.spelling!r} read as {self.canonical!r}"


def parse_model_name(text: str) -> ModelName:
    """`style_1_vV8` (or the legacy `style_1_vv8`, `style_1_v8`) -> ModelName; so is an actor's
    `actor_6_V6` (or the legacy `actor_0006_V6`, `actor_6_v6`, `actor_6_vV6`)."""
    if text.startswith("actor_"):
        return _parse_actor_model_name(text)
    match = _MODEL_NAME.fullmatch(text)
    if match is None:
        raise NameRejected(_model_name_problem(text))
    style_id, separator, number = match.groups()
    version_name = f"V{number}"
    del separator  # `V`, `v` or nothing: all three spellings name the same version
    canonical = f"style_{style_id}_v{version_name}"
    return ModelName(int(style_id), version_name, None if text == canonical else text)


def _parse_actor_model_name(text: str) -> ModelName:
    match = _ACTOR_MODEL_NAME.fullmatch(text)
    if match is None:
        raise NameRejected(_actor_model_name_problem(text))
    actor_id, _, number = match.groups()  # the separator's spelling names the same version
    canonical = f"actor_{int(actor_id)}_V{number}"
    return ModelName(int(actor_id), f"V{number}", None if text == canonical else text, ACTOR)


def _actor_model_name_problem(text: str) -> str:
    loose = _LOOSE_ACTOR_NAME.fullmatch(text)
    if loose is None:
        return f"{_quote(text)} is not a model name of the form actor_<actorId>_<versionName>"
    actor_text, version_text = loose.groups()
    if not re.fullmatch(r"0|[1-9][0-9]{0,8}|0[0-9]{3}", actor_text):
        return f"{_quote(text)}: actor id {_quote(actor_text)} is not a non-negative integer"
    return (
        f"{_quote(text)}: version {_quote(version_text)} is not V<n> with n a positive "
        "integer without leading zeros"
    )


def _model_name_problem(text: str) -> str:
    loose = _LOOSE_MODEL_NAME.fullmatch(text)
    if loose is None:
        return f"{_quote(text)} is not a model name of the form style_<styleId>_v<versionName>"
    style_text, version_text = loose.groups()
    if not _STYLE_ID.fullmatch(style_text):
        return (
            f"{_quote(text)}: style id {_quote(style_text)} is not a positive integer without leading zeros"
        )
    if not version_text:
        return f"{_quote(text)}: the version name is missing after '_v'"
    return (
        f"{_quote(text)}: version {_quote(version_text)} is not V<n> with n a positive "
        "integer without leading zeros"
    )


def key_basename(key: str) -> str:
    """Only the last path segment of an S3 key counts."""
    return key.rsplit("/", 1)[-1]


def parse_lora_key(key: str, kind: SubjectKind = STYLE) -> ModelName:
    """An S3 key whose basename is `<modelName>.safetensors` of a subject of `kind` -> ModelName;
    otherwise why not (a style's file under the actors' prefix is not an actor's LoRA)."""
    base = key_basename(key)
    if not base:
        raise NameRejected("a folder marker, not a file")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise NameRejected("the key has '.' or '..' segments: its URL would name another object")
    if base.startswith(".") or any(base.endswith(marker) for marker in _TEMP_MARKERS):
        raise NameRejected(f"{_quote(base)} is a temporary or hidden file")
    if not base.endswith(LORA_EXTENSION):
        raise NameRejected(f"{_quote(base)} does not end in {LORA_EXTENSION}")
    stem = base[: -len(LORA_EXTENSION)]
    if not stem.startswith(f"{kind}_"):
        form = "actor_<id>_<V>" if kind == ACTOR else "style_<id>_v<V>"
        raise NameRejected(
            f"{_quote(base)} is not {'an' if kind == ACTOR else 'a'} {kind} LoRA ({form}.safetensors)"
        )
    return parse_model_name(stem)


def parse_legacy_name(text: str, style_id: int, kind: SubjectKind = STYLE) -> tuple[str, str | None]:
    """A legacy entry's `name` -> (canonical version name, how it was read or None if clean).

    Accepts `V8`, `v8`, a model name (`style_1_vV8`, `actor_6_V6`) or a file name
    (`style_1_vV8.safetensors`) of the same subject. A model name of another subject (another
    id, or the other kind) is rejected: the entry is in the wrong file.
    """
    try:
        name = parse_version_name(text)
    except NameRejected:
        pass
    else:
        return name, (None if name == text else "case")
    stem = text[: -len(LORA_EXTENSION)] if text.endswith(LORA_EXTENSION) else text
    try:
        model = parse_model_name(stem)
    except NameRejected as rejected:
        raise NameRejected(
            f"entry name {_quote(text)} is neither V<n> nor a model or file name"
        ) from rejected
    if (model.kind, model.style_id) != (kind, style_id):
        raise NameRejected(
            f"entry name {_quote(text)} belongs to {model.kind} {model.style_id}, not {kind} {style_id}"
        )
    return model.version_name, ("file-name" if stem != text else "model-name")


def _quote(text: str, limit: int = 80) -> str:
    """Quote user text for an error message, cut to a readable length."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)


def job_base_id(job_id: str) -> str:
    """RunPod job ids carry a suffix (`-e1`, `-u2`); some callers strip it. Match on the rest."""
    return _JOB_SUFFIX.sub("", job_id)
