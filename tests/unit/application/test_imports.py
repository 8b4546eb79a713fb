"""Import of legacy documents: merging duplicates, repeats, jobs indexed, then webhooks and syncs."""

from __future__ import annotations

import contextlib
import json

from eventsourcing.domain import Aggregate

from loraledger.application.imports import ImportReport
from loraledger.application.ledger import Ledger, LedgerStore
from loraledger.domain.decisions import Rule
from loraledger.domain.indexes import StyleIndex
from loraledger.domain.legacy import LegacyPlan, plan_document
from tests.unit.application.support import (
    JOB,
    PARAMETERS,
    PLAIN,
    PREFIX,
    Clock,
    completed,
    entries,
    event_count,
    history_types,
    lora_file,
    only_entry,
)

# -- import ---------------------------------------------------------------------------------------

V8_URL = f"{PLAIN}{PREFIX}style_1_vV8.safetensors"
BEFORE_SYNCED = {
    "id": "style_1_vV8",
    "name": "style_1_vV8.safetensors",
    "status": "completed",
    "loraUrl": V8_URL,
    "description": "Synced from S3",
}
BEFORE_PENDING = {"id": JOB, "name": "V8", "status": "pending", "parameters": PARAMETERS}


def test_import_of_the_design_notes_before_example_gives_one_entry(ledger: Ledger, clock: Clock) -> None:
    report = ledger.imports.import_plan(plan_document(1, [BEFORE_SYNCED, BEFORE_PENDING]), "styles/1/tv.json")

    assert (report.versions, report.imported, report.merged) == (1, 1, 1)
    assert entries(ledger) == [
        {"id": JOB, "name": "V8", "status": "completed", "parameters": PARAMETERS, "loraUrl": V8_URL}
    ]

    synced_at = clock.advance(hours=10)
    sync = ledger.sync.observe([lora_file("style_1_vV8")], url_base=PLAIN)

    assert (sync.matched_synced, sync.created, sync.skipped) == (1, 0, [])
    assert entries(ledger) == [
        {
            "id": JOB,
            "name": "V8",
            "status": "completed",
            "parameters": PARAMETERS,
            "loraUrl": V8_URL,
            "lastSynced": synced_at,
        }
    ]
    history = ledger.queries.history(1, "V8")
    assert [type(e).__name__ for e in history] == ["Imported", "Merged", "LoraSynced"]
    merged, synced = history[1], history[2]
    assert json.loads(merged.raw_entry_json) == BEFORE_SYNCED  # type: ignore[attr-defined]
    assert merged.decision["rule"] == Rule.MERGED_FILE_NAME  # type: ignore[attr-defined]
    assert synced.decision["rule"] == Rule.SYNCED_BY_URL  # type: ignore[attr-defined]
    assert synced.decision["rule"].startswith("second-pass:")  # type: ignore[attr-defined]


def test_second_import_of_the_same_document_records_nothing(ledger: Ledger) -> None:
    ledger.imports.import_plan(plan_document(1, [BEFORE_SYNCED, BEFORE_PENDING]), "a.json")
    before = event_count(ledger)

    again = ledger.imports.import_plan(plan_document(1, [BEFORE_SYNCED, BEFORE_PENDING]), "a.json")

    assert (again.events, again.imported, again.merged, again.already_imported) == (0, 0, 0, 2)
    assert event_count(ledger) == before


def test_imported_pending_job_is_completed_by_its_webhook(ledger: Ledger) -> None:
    ledger.imports.import_plan(plan_document(1, [BEFORE_PENDING]), "a.json")

    result = ledger.reports.apply(completed(model="style_1_vV8"))

    assert (result.result, result.decisions[0].rule) == ("applied", Rule.JOB_ID_EXACT)
    entry = only_entry(ledger, "V8")
    assert entry["status"] == "completed"
    assert entry["loraUrl"] == V8_URL


def test_import_then_sync_matches_a_lora_url_that_contains_the_file_name(ledger: Ledger) -> None:
    literal = dict(BEFORE_SYNCED, loraUrl="https://...style_1_vV8.safetensors")
    ledger.imports.import_plan(plan_document(1, [literal, BEFORE_PENDING]), "a.json")

    sync = ledger.sync.observe([lora_file("style_1_vV8")], url_base=PLAIN)

    assert sync.matched_synced == 1
    assert "lastSynced" in only_entry(ledger, "V8")


def test_a_job_matched_by_model_name_is_known_by_its_id_afterwards(ledger: Ledger) -> None:
    ledger.sync.observe([lora_file()], url_base=PLAIN)
    assert ledger.reports.apply(completed("job-x-e1")).result == "applied"

    assert ledger.reports.apply(completed("job-x-e1", model=None)).result == "repeat"
    assert ledger.reports.apply(completed("job-x", model=None)).result == "repeat"


def test_a_parked_job_matched_later_by_model_name_is_known_by_its_id_afterwards(ledger: Ledger) -> None:
    assert ledger.reports.apply(completed("job-x-e1")).result == "unmatched"
    ledger.sync.observe([lora_file()], url_base=PLAIN)
    assert ledger.reports.apply(completed("job-x-e1")).result == "applied"

    # a /status answer or a webhook body without the model name: the job is known now
    assert ledger.reports.apply(completed("job-x-e1", model=None)).result == "repeat"


def test_annotate_true_over_an_imported_1_changes_the_value(ledger: Ledger) -> None:
    ledger.imports.import_plan(plan_document(1, [dict(BEFORE_PENDING, isGood=1)]), "a.json")

    ledger.annotations.annotate(1, "V8", {"isGood": True}, [])

    assert only_entry(ledger, "V8")["isGood"] is True


def test_import_of_an_entry_with_an_odd_id_never_makes_the_log_unreadable(ledger: Ledger) -> None:
    odd = {"id": {"_type_": "uuid_hex", "_data_": "zz"}, "name": "V1", "status": "pending"}
    try:
        ledger.imports.import_plan(plan_document(1, [odd]), "a.json")
    except ValueError:  # rejecting the entry with a reason would be fine too
        return

    assert [e["name"] for e in entries(ledger)] == ["V1"]
    assert history_types(ledger, "V1") == ["Imported"]


# -- several documents per transaction -------------------------------------------------------------


def _recorded(ledger: Ledger) -> list[tuple[str, int, str]]:
    return [
        (str(r.originator_id), r.originator_version, r.topic)
        for r in ledger.store.recorder.select_notifications(1, 10_000)
    ]


def _documents() -> list[tuple[LegacyPlan, str]]:
    shared = {"id": JOB, "name": "V1", "status": "completed", "parameters": PARAMETERS}
    return [
        (plan_document(1, [shared, {"id": "a", "name": "V2", "status": "failed"}]), "1/tv.json"),
        (plan_document(2, [{**shared, "name": "V3"}]), "2/tv.json"),  # JOB is style 1 V1's already
        (plan_document(3, [{"id": "b", "name": "V1", "status": "completed"}]), "3/tv.json"),
        (plan_document(4, [{"id": "c", "name": "V1", "status": "completed"}]), "4/tv.json"),
    ]


class RefusingStyleFour(LedgerStore):
    """A store that refuses whatever style 4's document records (as a refused document would be)."""

    def save_all(self, *aggregates: Aggregate | None) -> int:
        if any(isinstance(a, StyleIndex) and a.style_id == 4 for a in aggregates):
            raise ValueError("style 4 is refused")
        return super().save_all(*aggregates)


def test_documents_imported_together_record_what_one_by_one_imports_do_and_a_refused_one_alone(
    clock: Clock,
) -> None:
    together, one_by_one = (
        Ledger.open({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, store_class=RefusingStyleFour)
        for _ in range(2)
    )
    results = together.imports.import_plans(_documents())
    for plan, source in _documents():
        with contextlib.suppress(ValueError):
            one_by_one.imports.import_plan(plan, source)

    assert [type(r).__name__ for r in results] == ["ImportReport"] * 3 + ["ValueError"]
    assert _recorded(together) == _recorded(one_by_one)
    assert sum(r.events for r in results if isinstance(r, ImportReport)) == event_count(together)
    assert together.store.find_job(JOB) is not None
    assert [e["name"] for e in entries(together, 2)] == ["V3"]


def test_documents_imported_together_are_saved_in_one_transaction(clock: Clock) -> None:
    ledger = Ledger.open({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    saves = []
    original = ledger.store.save
    ledger.store.save = lambda *a, **k: saves.append(len(a)) or original(*a, **k)  # type: ignore[method-assign]
    documents = _documents()[:3]

    results = ledger.imports.import_plans(documents)

    assert len(saves) == 1
    assert sum(r.events for r in results if isinstance(r, ImportReport)) == event_count(ledger) > 0
    again = ledger.imports.import_plans(documents)
    assert [r.events for r in again if isinstance(r, ImportReport)] == [0, 0, 0]
