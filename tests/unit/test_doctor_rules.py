"""doctor's rules on legacy entries: stale pending attempts and half-synced entries, each with its fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loraledger.domain.doctor import GONE, Finding, check_entries, job_of, jobs_to_ask

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"


def entry(name: str, status: str = "pending", **fields: Any) -> dict[str, Any]:
    return {"id": JOB, "name": name, "timestamp": "2025-10-13T19:36:17.724Z", "status": status, **fields}


def findings(
    entries: list[dict[str, Any]], says: dict[str, str | None] | None = None
) -> list[tuple[Finding, str]]:
    found = check_entries(1, entries, now=NOW, older_than=HOUR, runpod_says=says, source="tree")
    return [(f.finding, f.version) for f in found]


def test_a_pending_entry_weeks_old_with_no_job_is_found_with_the_reconcile_that_fails_it() -> None:
    (found,) = check_entries(
        1, [entry("V9", id="style_1_vV9")], now=NOW, older_than=HOUR, runpod_says=None, source="tree"
    )
    assert found.finding == Finding.PENDING_NO_JOB
    assert "pending since 2025-10-13T19:36:17.724Z (18d16h23m)" in found.problem
    assert found.fix.startswith("loraledger import tree (once), then loraledger reconcile --older-than 1h")
    assert found.line().startswith("V9: pending since")


def test_a_recent_pending_entry_and_a_running_job_are_fine() -> None:
    recent = entry("V9", id="style_1_vV9", timestamp="2025-11-01T11:30:00.000Z")
    assert findings([recent]) == []
    assert findings([entry("V9")], {JOB: "IN_PROGRESS"}) == []


def test_runpod_saying_the_job_ended_or_forgot_it_is_a_finding() -> None:
    assert findings([entry("V9")], {JOB: "COMPLETED"}) == [(Finding.PENDING_ENDED, "V9")]
    assert findings([entry("V9")], {JOB: GONE}) == [(Finding.PENDING_UNKNOWN_TO_RUNPOD, "V9")]
    assert findings([entry("V9")], None) == [(Finding.PENDING_NOT_ASKED, "V9")]
    assert findings([entry("V9")], {}) == []  # asking failed: the caller says so


def test_an_entry_with_last_synced_and_no_lora_url_is_half_synced_and_sync_fixes_it() -> None:
    half = entry("V8", status="completed", lastSynced="2025-10-14T05:55:19.167Z")
    (found,) = check_entries(1, [half], now=NOW, older_than=HOUR, runpod_says=None, source="tree")
    assert found.finding == Finding.HALF_SYNCED and found.fix.startswith(
        "loraledger import tree (once), then"
    )
    assert "loraledger sync --style 1" in found.fix
    assert findings([{**half, "loraUrl": "https://b/x.safetensors"}]) == []


def test_only_old_pending_entries_with_a_job_are_asked_about() -> None:
    entries = [entry("V9"), entry("V8", id="style_1_vV8"), entry("V7", status="completed")]
    assert jobs_to_ask(entries, NOW, HOUR) == [JOB]
    assert [job_of(e) for e in entries] == [JOB, None, JOB]
    assert job_of({"id": "a/b"}) is None
