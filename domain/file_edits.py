"""Edits someone else made to a `training_versions.json` file (CONTRACT §12), decided entry by entry.

The file as the service last wrote it (`base`) is compared with the file as found (`edited`),
entry by entry (by version name). What changed is weighed against the version as the ledger
knows it now:

* a field the service does not own (`isGood`, `description`, …) is taken as an annotation;
* an entry gone from the file hides its version (shown again by `PATCH … {"hidden": false}`);
* a new pending entry with a RunPod job id is a training started elsewhere (the UI): adopted,
  so its webhook applies; any other new entry is recorded as it is (as an import would);
* a changed owned field is kept or refused by `judge_owned_field`; refused ones are reported and
  the file is kept as a backup.

Pure: values in, a plan of typed decisions out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loraledger.domain import blobs
from loraledger.domain.decisions import Candidate, Decision, FileEditOutcome, Rule
from loraledger.domain.entries import OWNED_FIELDS, Status
from loraledger.domain.matching import VersionFacts, keeps_its_lora
from loraledger.domain.naming import NameRejected, parse_model_name, parse_version_name

# A RunPod job id as its `/run` answers give them (adapters/runpod.py checks the same form).
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Fields a kept failure or an adopted start brings along: they are that change, not edits of their own.
_FAILURE_FIELDS = frozenset({"status", "error", "failedAt", "completedAt"})
_START_FIELDS = frozenset(
    {"id", "status", "timestamp", "parameters", "loraUrl", "completedAt", "error", "failedAt", "lastSynced"}
)
_TIMES = frozenset({"timestamp", "completedAt", "failedAt", "lastSynced"})
MARKED_FAILED = "marked failed in the file"
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class KnownVersion:
    """A version as the ledger knows it now."""

    facts: VersionFacts
    entry: Mapping[str, Any]
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class AdoptedStart:
    """A training started elsewhere: its request as the entry states it, and its RunPod job id."""

    job_id: str
    timestamp: str | None
    parameters: dict[str, Any]
    description: str | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntryEdit:
    """What an edit does to one version the ledger knows."""

    name: str
    set_fields: dict[str, Any]
    cleared: list[str]
    refused: dict[str, dict[str, Any]]  # field -> {"file": value (absent: removed), "kept": value, "why": …}
    decision: Decision
    fail: str | None = None  # a pending version the file marks failed: the error it shows
    start: AdoptedStart | None = None
    show: bool = False  # a hidden version's entry is back in the file

    @property
    def changes_anything(self) -> bool:
        return bool(self.set_fields or self.cleared or self.refused or self.fail or self.start or self.show)


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry for a version the ledger does not know: a started training, or recorded as it is."""

    name: str
    entry: dict[str, Any]
    start: AdoptedStart | None
    decision: Decision


@dataclass(frozen=True, slots=True)
class Hide:
    name: str
    decision: Decision


@dataclass(slots=True)
class FileEditPlan:
    edits: list[EntryEdit] = field(default_factory=list)
    new_entries: list[NewEntry] = field(default_factory=list)
    hides: list[Hide] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)  # entries that name no version, and why

    @property
    def refused(self) -> bool:
        """Whether some part of the edit was not taken (the file must then be kept as a backup)."""
        return bool(self.unusable) or any(edit.refused for edit in self.edits)

    @property
    def empty(self) -> bool:
        return not (self.edits or self.new_entries or self.hides or self.unusable)


def entries_by_name(entries: Sequence[Any], problems: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The entries keyed by version name; entries without a usable name are told in `problems`."""
    found: dict[str, dict[str, Any]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            _tell(problems, f"entry {position} is not an object")
            continue
        raw = entry.get("name")
        try:
            name = parse_version_name(raw) if isinstance(raw, str) else None
        except NameRejected:
            name = None
        if name is None:
            _tell(problems, f"entry {position}: name {raw!r} is not V<n>")
        elif name in found:
            _tell(problems, f"entry {position}: a second entry for {name}")
        else:
            found[name] = entry
    return found


def _tell(problems: list[str] | None, problem: str) -> None:
    if problems is not None:
        problems.append(problem)


def plan_file_edit(
    style_id: int,
    source: str,
    base: Sequence[Any] | None,
    edited: Sequence[Any],
    known: Mapping[str, KnownVersion],
) -> FileEditPlan:
    """Decide every change between `base` (the file as last written; None when unknown) and `edited`.

    Without a base the ledger's own entries stand in for it, and no entry counts as deleted (a
    file the service never wrote is not told apart from one that misses versions).
    """
    plan = FileEditPlan()
    after = entries_by_name(edited, plan.unusable)
    before = entries_by_name(base) if base is not None else {n: dict(k.entry) for n, k in known.items()}
    for name in sorted(before.keys() - after.keys()):
        current = known.get(name)
        if base is not None and current is not None and not current.hidden:
            plan.hides.append(Hide(name, _decision(Rule.FILE_DELETED, FileEditOutcome.HIDDEN, source, name)))
    for name, entry in after.items():
        current = known.get(name)
        if current is None:
            plan.new_entries.append(_new_entry(style_id, name, entry, source))
            continue
        was = before.get(name)
        if was is None or current.hidden:
            was = dict(current.entry)  # back in the file: weighed against what the ledger has
        edit = _entry_edit(style_id, name, was, entry, current, source)
        if edit.changes_anything:
            plan.edits.append(edit)
    return plan


def adopted_start(style_id: int, name: str, entry: Mapping[str, Any]) -> AdoptedStart | None:
    """A pending entry whose id is a RunPod job id (not the model name): a training started elsewhere."""
    job_id = entry.get("id")
    if entry.get("status") != Status.PENDING or not isinstance(job_id, str):
        return None
    if _JOB_ID.fullmatch(job_id) is None or _is_model_name_of(job_id, style_id, name):
        return None
    parameters = entry.get("parameters")
    description = entry.get("description")
    timestamp = entry.get("timestamp")
    return AdoptedStart(
        job_id=job_id,
        timestamp=timestamp if isinstance(timestamp, str) else None,
        parameters=dict(parameters) if isinstance(parameters, dict) else {},
        description=description if isinstance(description, str) else None,
        fields={k: v for k, v in entry.items() if k not in OWNED_FIELDS and k != "description"},
    )


def _is_model_name_of(text: str, style_id: int, name: str) -> bool:
    """Whether `text` is this version's canonical model name, whichever kind its subject is."""
    try:
        model = parse_model_name(text)
    except NameRejected:
        return False
    return model.spelling is None and (model.style_id, model.version_name) == (style_id, name)


def _new_entry(style_id: int, name: str, entry: dict[str, Any], source: str) -> NewEntry:
    start = adopted_start(style_id, name, entry)
    if start is not None:
        decision = _decision(
            Rule.FILE_STARTED, FileEditOutcome.STARTED, source, name, {"job_id": start.job_id}
        )
        return NewEntry(name, entry, start, decision)
    return NewEntry(name, entry, None, _decision(Rule.FILE_ADDED, FileEditOutcome.ADDED, source, name))


def judge_owned_field(
    style_id: int, name: str, key: str, value: Any, current: KnownVersion, entry: Mapping[str, Any]
) -> tuple[bool, str]:
    """Whether the file's new `value` of an owned field is kept (True), and why. `value` is
    `_ABSENT` when the field was removed. Only two changes are kept: a pending training marked
    failed, and a failed version started again (a pending entry with a new RunPod job id)."""
    facts = current.facts
    if key == "status" and value == Status.FAILED and facts.status == Status.PENDING:
        return True, "a pending training marked failed in the file"
    if key == "status" and value == Status.PENDING and facts.status == Status.FAILED:
        start = adopted_start(style_id, name, entry)
        if start is not None and start.job_id not in facts.job_ids:
            return True, f"a failed version started again as RunPod job {start.job_id}"
        return False, "only a start with a new RunPod job id makes a version pending"
    if key in ("status", "loraUrl") and keeps_its_lora(facts.status, facts.lora_url):
        return False, "a completed LoRA is never overwritten"
    if key == "status" and value == Status.PENDING:
        return False, "only a start with a new RunPod job id makes a version pending"
    if key in ("status", "loraUrl"):
        return False, "a version is completed by its webhook or its LoRA file in S3"
    if key == "id":
        return False, "the id is the current attempt's RunPod job id, as recorded"
    if key == "name":
        return False, "the name is the version; add an entry for another version instead"
    if key in _TIMES:
        return False, "times are recorded by the service as things happen"
    if key == "parameters":
        return False, "the parameters are those the training was started with"
    return False, "the service records this field from what happened"


def _entry_edit(
    style_id: int,
    name: str,
    was: Mapping[str, Any],
    entry: Mapping[str, Any],
    current: KnownVersion,
    source: str,
) -> EntryEdit:
    now = current.entry
    changed = [
        key
        for key in dict.fromkeys([*was, *entry])
        if blobs.dump(was.get(key, None)) != blobs.dump(entry.get(key, None))
        or (key in was) != (key in entry)
    ]
    set_fields: dict[str, Any] = {}
    cleared: list[str] = []
    refused: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    fail: str | None = None
    start: AdoptedStart | None = None
    facts = current.facts
    if "status" in changed and entry.get("status") != now.get("status"):
        kept, why = judge_owned_field(style_id, name, "status", entry.get("status", _ABSENT), current, entry)
        if kept and entry.get("status") == Status.FAILED:
            error = entry.get("error")
            fail = error if isinstance(error, str) and error else MARKED_FAILED
            notes.append(f"status: kept: {why}")
        elif kept:
            start = adopted_start(style_id, name, entry)
            notes.append(f"status: kept: {why}")
    absorbed = _FAILURE_FIELDS if fail else _START_FIELDS if start else frozenset()
    for key in changed:
        value = entry.get(key, _ABSENT)
        if key in absorbed:
            continue
        if key not in OWNED_FIELDS:
            if value is _ABSENT:
                if key in now:
                    cleared.append(key)
            elif key not in now or blobs.dump(now[key]) != blobs.dump(value):
                set_fields[key] = value
            continue
        if value is not _ABSENT and key in now and blobs.dump(now[key]) == blobs.dump(value):
            continue  # the file says what the ledger says
        if value is _ABSENT and key not in now:
            continue
        _, why = judge_owned_field(style_id, name, key, value, current, entry)
        refused[key] = {"file": None if value is _ABSENT else value, "removed": value is _ABSENT}
        refused[key].update({"kept": now.get(key), "why": why})
        notes.append(f"{key}: refused: {why}")
    if set_fields or cleared:
        notes.insert(0, f"taken: {', '.join([*set_fields, *cleared])} (fields the service does not own)")
    show = current.hidden
    rule, outcome = _edit_rule(refused, fail, start, show, set_fields or cleared)
    decision = _decision(
        rule,
        outcome,
        source,
        name,
        {"fields": changed},
        (Candidate(facts.id, name, facts.status, True, "the version the entry names"),),
        tuple(notes),
    )
    return EntryEdit(name, set_fields, cleared, refused, decision, fail, start, show)


def _edit_rule(
    refused: Mapping[str, Any], fail: str | None, start: AdoptedStart | None, show: bool, taken: object
) -> tuple[str, FileEditOutcome]:
    if start is not None:
        return Rule.FILE_STARTED, FileEditOutcome.STARTED
    if fail is not None:
        return Rule.FILE_MARKED_FAILED, FileEditOutcome.FAILED
    if refused:
        return Rule.FILE_OWNED_REFUSED, FileEditOutcome.REFUSED
    if show:
        return Rule.FILE_ENTRY_BACK, FileEditOutcome.SHOWN
    return Rule.FILE_ANNOTATED, FileEditOutcome.ANNOTATED


def _decision(
    rule: str,
    outcome: FileEditOutcome,
    source: str,
    name: str,
    extra: Mapping[str, Any] | None = None,
    candidates: tuple[Candidate, ...] = (),
    notes: tuple[str, ...] = (),
) -> Decision:
    return Decision(
        "file-edit", rule, outcome, {"file": source, "name": name, **(extra or {})}, candidates, notes
    )


def shown_decision(hidden: bool) -> Decision:
    """`PATCH … {"hidden": …}`: a version shown again, or hidden, by hand."""
    if hidden:
        return Decision("patch", Rule.HIDDEN_BY_PATCH, FileEditOutcome.HIDDEN)
    return Decision("patch", Rule.SHOWN_AGAIN, FileEditOutcome.SHOWN)
