"""What `doctor` finds in a `training_versions.json` beyond duplicates: attempts left pending and
entries synced only in half, each with the command that fixes it.

Pure rules: the entries, the time, the reconcile age and what RunPod said of the jobs asked about
are handed in; each finding is a typed value (`EntryFinding`) naming its rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from loraledger.domain.matching import RUNNING_STATUSES
from loraledger.domain.times import parse_time

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# What RunPod says of a job it no longer knows (404), in the answers handed to `check_entries`.
GONE = None


class Finding(StrEnum):
    PENDING_NO_JOB = "stale-pending:no-job-known"
    PENDING_ENDED = "stale-pending:runpod-says-ended"
    PENDING_UNKNOWN_TO_RUNPOD = "stale-pending:unknown-to-runpod"
    PENDING_NOT_ASKED = "stale-pending:runpod-not-asked"
    HALF_SYNCED = "half-synced:last-synced-without-lora-url"


@dataclass(frozen=True, slots=True)
class EntryFinding:
    finding: Finding
    version: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.version}: {self.problem}; fix: {self.fix}"


def job_of(entry: Mapping[str, Any]) -> str | None:
    """The RunPod job id an entry names; None when its `id` is a model name (`style_1_vV8`) or none."""
    value = entry.get("id")
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        return None
    return None if value.lower().startswith(("style_", "actor_")) else value


def _pending_since(entry: Mapping[str, Any], now: datetime, older_than: timedelta) -> str | None:
    """How long a pending entry has waited, when that is longer than `older_than` (or unknown)."""
    if entry.get("status") != "pending":
        return None
    started = entry.get("timestamp")
    try:
        moment = parse_time(started) if isinstance(started, str) else None
    except ValueError:
        moment = None
    if moment is None:
        return "pending, with no readable timestamp"
    if now - moment <= older_than:
        return None
    return f"pending since {started} ({_duration(now - moment)})"


def jobs_to_ask(entries: Sequence[Mapping[str, Any]], now: datetime, older_than: timedelta) -> list[str]:
    """The jobs of entries pending longer than `older_than` that RunPod can be asked about."""
    return [
        job
        for entry in entries
        if _pending_since(entry, now, older_than) is not None and (job := job_of(entry)) is not None
    ]


def check_entries(
    style_id: int,
    entries: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    older_than: timedelta,
    runpod_says: Mapping[str, str | None] | None,
    source: str,
) -> list[EntryFinding]:
    """Each entry pending longer than `older_than` whose job is unknown, ended, or gone (RunPod's
    status per job asked in `runpod_says`, None for a job it no longer knows; `runpod_says` None:
    RunPod was not asked), and each entry with `lastSynced` but no `loraUrl`."""
    age = _duration(older_than)
    reconcile = f"loraledger reconcile --older-than {age}"
    after_import = f"loraledger import {source} (once), then {reconcile}"
    found: list[EntryFinding] = []
    for entry in entries:
        name = str(entry.get("name"))
        waited = _pending_since(entry, now, older_than)
        job = job_of(entry)
        if waited is not None and job is None:
            found.append(
                EntryFinding(
                    Finding.PENDING_NO_JOB,
                    name,
                    f"{waited} and no RunPod job known (its id is {entry.get('id')!r})",
                    f"{after_import}: it marks the attempt failed as never confirmed",
                )
            )
        elif waited is not None and job is not None:
            finding = _asked(name, waited, job, runpod_says, after_import)
            if finding is not None:
                found.append(finding)
        if entry.get("lastSynced") is not None and not entry.get("loraUrl"):
            found.append(
                EntryFinding(
                    Finding.HALF_SYNCED,
                    name,
                    f"has lastSynced ({entry.get('lastSynced')}) but no loraUrl",
                    f"loraledger import {source} (once), then loraledger sync --style {style_id}: "
                    "its file in the bucket sets the loraUrl",
                )
            )
    return found


def _asked(
    name: str, waited: str, job: str, runpod_says: Mapping[str, str | None] | None, fix: str
) -> EntryFinding | None:
    if runpod_says is None:
        return EntryFinding(
            Finding.PENDING_NOT_ASKED,
            name,
            f"{waited}, job {job}; RunPod was not asked (no RunPod settings)",
            f"{fix}: it asks RunPod and records the answer",
        )
    if job not in runpod_says:
        return None  # asking failed: said by the caller
    status = runpod_says[job]
    if status is GONE:
        return EntryFinding(
            Finding.PENDING_UNKNOWN_TO_RUNPOD,
            name,
            f"{waited}, and RunPod no longer knows job {job}",
            f"{fix}: it marks the attempt failed",
        )
    if status in RUNNING_STATUSES:
        return None  # still training: nothing to fix
    return EntryFinding(
        Finding.PENDING_ENDED,
        name,
        f"{waited}, but RunPod says job {job} ended: {status}",
        f"{fix}: it records RunPod's answer",
    )


def _duration(span: timedelta) -> str:
    """`1d`, `2h`, `1h30m`, `15m` (whole minutes; at least `1m`): what `--older-than` takes."""
    minutes = max(1, int(span.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text
