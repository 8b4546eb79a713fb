"""The counters of adapters/metrics.py as the adapters move them (the scrape itself is tested end to
end in tests/e2e/test_operating.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from loraledger.adapters.metered_store import MeteredLedgerStore
from loraledger.adapters.metrics import prepare_workers, record_events, remove_workers_dir, timed_run
from loraledger.application.store import LedgerStore


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_metered_store_keeps_the_ledger_store_tables() -> None:
    assert MeteredLedgerStore.name == LedgerStore.name == "loraledger"


def test_events_appended_are_counted_by_type() -> None:
    before = sample("loraledger_events_appended_total", type="TrainingCompleted")

    record_events(["TrainingCompleted", "TrainingCompleted", "TrainingRequested"])

    assert sample("loraledger_events_appended_total", type="TrainingCompleted") == before + 2


def test_a_run_that_raises_counts_as_an_error_with_its_duration() -> None:
    errors = sample("loraledger_runs_total", kind="sync", outcome="error")
    timed = sample("loraledger_run_duration_seconds_count", kind="sync")
    ticks = iter([10.0, 12.5])

    with pytest.raises(RuntimeError), timed_run("sync", clock=lambda: next(ticks)):
        raise RuntimeError("S3 refused")

    assert sample("loraledger_runs_total", kind="sync", outcome="error") == errors + 1
    assert sample("loraledger_run_duration_seconds_count", kind="sync") == timed + 1


def test_serve_clears_an_earlier_runs_counter_files_but_not_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    earlier, own = tmp_path / "counter_999999.db", tmp_path / f"counter_{os.getpid()}.db"
    earlier.write_bytes(b"x")
    own.write_bytes(b"x")

    assert prepare_workers(4) is None  # the caller's folder: kept when serve ends

    assert not earlier.exists() and own.exists()


def test_several_workers_get_a_folder_of_their_own_removed_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    created = prepare_workers(2)

    assert created is not None and os.environ["PROMETHEUS_MULTIPROC_DIR"] == created
    remove_workers_dir(created)
    assert not Path(created).exists()
