"""Reading legacy `training_versions.json` documents: validation, grouping, merging, diagnosis.

The same plan serves `import` (which turns it into events) and `doctor` (which only reports), so
the two can never disagree about what is a duplicate.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from loraledger.domain import blobs
from loraledger.domain.decisions import Rule
from loraledger.domain.entries import STATUSES, SYNCED_FROM_S3
from loraledger.domain.matching import url_file_name
from loraledger.domain.naming import (
    LORA_EXTENSION,
    NameRejected,
    format_model_name,
    parse_legacy_name,
    parse_lora_key,
    parse_model_name,
    version_number,
)
from loraledger.domain.subjects import STYLE, SubjectKind

_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-[eu][0-9]+)?")
# Fields that say where a version got to; a merge never copies them from a less advanced entry.
_OUTCOME_FIELDS = ("status", "loraUrl", "completedAt", "failedAt", "error")


class LegacyDocumentError(ValueError):
    """A document that cannot be imported at all; nothing of it is recorded."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as found in the file, with its position (for messages) and its fingerprint."""

    position: int
    data: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(blobs.dump(self.data).encode()).hexdigest()

    @property
    def has_job_id(self) -> bool:
        value = self.data.get("id")
        return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None

    @property
    def has_parameters(self) -> bool:
        value = self.data.get("parameters")
        return isinstance(value, dict) and bool(value)


@dataclass(slots=True)
class VersionGroup:
    """All raw entries of one version: the one kept (`primary`) and those merged into it."""

    version_name: str
    primary: RawEntry
    primary_reading: str | None = None
    merged: list[tuple[RawEntry, str]] = field(default_factory=list)

    @property
    def entries(self) -> list[RawEntry]:
        return [self.primary, *(raw for raw, _ in self.merged)]


@dataclass(slots=True)
class LegacyPlan:
    """A valid document, grouped into versions, with the problems `doctor` reports."""

    style_id: int
    groups: list[VersionGroup]
    problems: list[str]
    kind: SubjectKind = STYLE  # whose document it is: `style_id` is an actor's id for an actor

    @property
    def duplicates(self) -> list[VersionGroup]:
        return [group for group in self.groups if group.merged]


def parse_document(text: str) -> list[dict[str, Any]]:
    """The `versions` list of a legacy document; LegacyDocumentError when it is not one."""
    try:
        document = blobs.parse(text)
    except ValueError as error:
        raise LegacyDocumentError([f"not valid JSON: {error}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("versions"), list):
        raise LegacyDocumentError(['not a training_versions document: no "versions" list'])
    entries: list[dict[str, Any]] = document["versions"]
    bad = [f"entry #{i + 1} is not an object" for i, e in enumerate(entries) if not isinstance(e, dict)]
    if bad:
        raise LegacyDocumentError(bad)
    return entries


def plan_document(style_id: int, entries: list[dict[str, Any]], kind: SubjectKind = STYLE) -> LegacyPlan:
    """Validate every entry and group entries that are the same version.

    Entries are the same version when their names read as the same `V<n>` (`V8`, `v8`,
    `style_1_vV8.safetensors`) or, failing a name, their id is that version's model name.
    Raises LegacyDocumentError listing every entry that cannot be read: one the user-JSON check
    refuses (blobs.check_fields), one without a name or status, and a job id on two versions.
    """
    errors: list[str] = []
    readings: list[tuple[RawEntry, str, str | None]] = []
    for position, data in enumerate(entries, start=1):
        try:
            blobs.check_fields(data, f"entry #{position}")
        except blobs.InvalidJson as refused:
            errors.append(str(refused))
            continue
        raw = RawEntry(position, data)
        try:
            version_name, reading = _version_of(style_id, raw, kind)
        except NameRejected as rejected:
            errors.append(f"entry #{position}: {rejected.reason}")
            continue
        status = data.get("status")
        if status not in STATUSES:
            errors.append(
                f"entry #{position} ({version_name}): status {status!r} is not one of " + ", ".join(STATUSES)
            )
            continue
        readings.append((raw, version_name, reading))
    if errors:
        raise LegacyDocumentError(errors)

    by_version: dict[str, list[tuple[RawEntry, str | None]]] = {}
    for raw, version_name, reading in readings:
        by_version.setdefault(version_name, []).append((raw, reading))
    groups = [_group(name, members) for name, members in by_version.items()]
    groups.sort(key=lambda group: version_number(group.version_name), reverse=True)
    shared = _shared_job_ids(groups)
    if shared:
        raise LegacyDocumentError(shared)
    problems = _diagnose(style_id, readings, groups, kind)
    return LegacyPlan(style_id, groups, problems, kind)


def _shared_job_ids(groups: list[VersionGroup]) -> list[str]:
    """A RunPod job trains one version: a job id on two versions leaves no way to tell which one
    its webhook is about (and the store keeps one owner per job)."""
    owners: dict[str, str] = {}
    problems: list[str] = []
    for group in groups:
        for raw in group.entries:
            job_id = raw.data.get("id")
            if not raw.has_job_id or not isinstance(job_id, str):
                continue
            owner = owners.setdefault(job_id, group.version_name)
            if owner != group.version_name:
                problem = (
                    f"job id {job_id} is on both {owner} and {group.version_name} "
                    "(a RunPod job trains one version)"
                )
                if problem not in problems:
                    problems.append(problem)
    return problems


def _version_of(style_id: int, raw: RawEntry, kind: SubjectKind) -> tuple[str, str | None]:
    name = raw.data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NameRejected("has no name")
    return parse_legacy_name(name, style_id, kind)


def _preference(raw: RawEntry, reading: str | None) -> tuple[int, int, int, int, int]:
    """Prefer the entry RunPod started (job id, parameters) over one a sync invented."""
    return (
        int(raw.has_job_id),
        int(raw.has_parameters),
        int(reading is None),
        int(raw.data.get("description") != SYNCED_FROM_S3),
        -raw.position,
    )


def _group(version_name: str, members: list[tuple[RawEntry, str | None]]) -> VersionGroup:
    primary, primary_reading = max(members, key=lambda member: _preference(*member))
    group = VersionGroup(version_name, primary, primary_reading)
    for raw, reading in members:
        if raw is primary:
            continue
        if primary.has_job_id and raw.data.get("id") == primary.data.get("id"):
            rule = Rule.MERGED_SAME_JOB
        elif reading in ("file-name", "model-name"):
            rule = Rule.MERGED_FILE_NAME
        elif isinstance(raw.data.get("id"), str) and _is_model_name_of(raw.data["id"], version_name):
            rule = Rule.MERGED_MODEL_ID
        else:
            rule = Rule.MERGED_SAME_NAME
        group.merged.append((raw, rule))
    return group


def _is_model_name_of(text: str, version_name: str) -> bool:
    try:
        return parse_model_name(text).version_name == version_name
    except NameRejected:
        return False


def primary_entry(group: VersionGroup) -> dict[str, Any]:
    """The kept entry as the file will show it: its own keys and order, with the clean name."""
    entry = dict(group.primary.data)
    entry["name"] = group.version_name
    return entry


def fields_to_take(current: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """What a merged entry adds to the kept one: only what the kept one lacks.

    A completed entry with a LoRA (the one a sync created) makes the version completed with that
    URL; parameters fill an empty set; a generated "Synced from S3" description is not copied.
    """
    taken: dict[str, Any] = {}
    other_finished = other.get("status") == "completed" and bool(other.get("loraUrl"))
    if other_finished and current.get("status") != "completed":
        taken["status"] = "completed"
        for key in ("loraUrl", "completedAt"):
            if key in other:
                taken[key] = other[key]
    for key, value in other.items():
        if key in ("id", "name") or key in taken or key in current:
            continue
        if key in _OUTCOME_FIELDS and not other_finished:
            continue
        if key == "description" and value == SYNCED_FROM_S3:
            continue
        taken[key] = value
    if not current.get("parameters") and other.get("parameters"):
        taken["parameters"] = other["parameters"]
    return taken


def _diagnose(
    style_id: int,
    readings: list[tuple[RawEntry, str, str | None]],
    groups: list[VersionGroup],
    kind: SubjectKind,
) -> list[str]:
    problems: list[str] = []
    for group in groups:
        if group.merged:
            positions = ", ".join(f"#{raw.position}" for raw in group.entries)
            problems.append(
                f"duplicate: {len(group.entries)} entries are {group.version_name} "
                f"({positions}); import keeps #{group.primary.position} "
                f"(id {group.primary.data.get('id')!r}) and merges the others"
            )
    for raw, version_name, reading in readings:
        data, where = raw.data, f"entry #{raw.position} ({version_name})"
        if reading in ("file-name", "model-name"):
            problems.append(f"{where}: name {data.get('name')!r} is not the clean {version_name}")
        status, url = data.get("status"), data.get("loraUrl")
        if status == "completed" and not url:
            problems.append(f"{where}: completed but has no loraUrl")
        if status == "pending" and url:
            problems.append(f"{where}: pending but already has a loraUrl")
        if isinstance(url, str):
            problems.extend(_url_problems(style_id, version_name, where, url, kind))
    numbers = [version_number(name) for _, name, _ in readings]
    if numbers != sorted(numbers, reverse=True):
        problems.append("entries are not ordered newest version first")
    return problems


def _url_problems(style_id: int, version_name: str, where: str, url: str, kind: SubjectKind) -> list[str]:
    file_name = url_file_name(url)
    if not file_name.endswith(LORA_EXTENSION) or not file_name.startswith(f"{kind}_"):
        return []  # a URL naming no LoRA of this kind is not checked
    try:
        model = parse_lora_key(file_name, kind)
    except NameRejected as rejected:
        return [f"{where}: loraUrl file is not a LoRA name ({rejected.reason})"]
    if (model.style_id, model.version_name) != (style_id, version_name):
        expected = format_model_name(style_id, version_name, kind)
        return [f"{where}: loraUrl names {model.canonical}, expected {expected}"]
    return []
