"""Prometheus metrics (CONTRACT §10): what happened, counted where it crosses the edge.

Counters and histograms live here, in prometheus-client's default registry, and are moved by small
`record_*` functions the adapters and the edge call; nothing in domain/ or application/ knows them.
The state gauges (versions by status, projection lag, the oldest pending training) are not kept
here: they are read from the ledger at each scrape (api/http.py), so every worker answers the same.

Several worker processes: `loraledger serve --workers N` sets `PROMETHEUS_MULTIPROC_DIR` before the
workers start, so each writes its counters to files there and a scrape of any worker sums them all
(`scrape_text`). No metric here is a gauge, so none needs a multiprocess mode.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
WEBHOOK_RESULTS = ("applied", "repeat", "ignored", "unmatched", "rejected")

WEBHOOKS = Counter(
    "loraledger_webhooks_total",
    "RunPod webhooks received, by what they were answered (rejected: refused before reading)",
    ["result"],
)
for _result in WEBHOOK_RESULTS:  # each shown from the start, at 0: an alert can compare them at once
    WEBHOOKS.labels(_result)
S3_EVENTS = Counter(
    "loraledger_s3_events_total", "S3 event notifications taken from the queue, by outcome", ["outcome"]
)
RUNS = Counter(
    "loraledger_runs_total", "Sync and reconcile runs, by kind and outcome (ok or error)", ["kind", "outcome"]
)
RUN_SECONDS = Histogram(
    "loraledger_run_duration_seconds",
    "How long sync and reconcile runs took",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
EVENTS_APPENDED = Counter(
    "loraledger_events_appended_total", "Events written to the event store, by event type", ["type"]
)
EXTERNAL_ERRORS = Counter(
    "loraledger_external_errors_total",
    "Calls to RunPod or S3 that failed after their retries, by service and error",
    ["service", "error"],
)
EXTERNAL_RETRIES = Counter(
    "loraledger_external_retries_total", "Calls to RunPod or S3 tried again, by service", ["service"]
)
REQUEST_SECONDS = Histogram(
    "loraledger_http_request_duration_seconds",
    "HTTP request latency, by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def record_webhook(result: str) -> None:
    WEBHOOKS.labels(result).inc()


def record_s3_event(outcome: str) -> None:
    """One S3 event notification handled (e.g. applied, repeat, skipped, unmatched, invalid)."""
    S3_EVENTS.labels(outcome).inc()


def record_events(type_names: Iterable[str]) -> None:
    for name, count in Tally(type_names).items():
        EVENTS_APPENDED.labels(name).inc(count)


def record_external_error(service: str, error: str) -> None:
    EXTERNAL_ERRORS.labels(service, error).inc()


def record_retries(service: str, count: int = 1) -> None:
    if count > 0:
        EXTERNAL_RETRIES.labels(service).inc(count)


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds)


@contextmanager
def timed_run(kind: str, clock: Callable[[], float] = time.perf_counter) -> Iterator[None]:
    """Count a sync or reconcile run and its duration; a run that raises counts as `error`."""
    began = clock()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        RUNS.labels(kind, outcome).inc()
        RUN_SECONDS.labels(kind).observe(clock() - began)


def count_s3_retries(client: Any) -> None:
    """Count botocore's own retries of every call this S3 client makes (its answers say how many)."""

    def after_call(parsed: dict[str, Any] | None = None, **_: Any) -> None:
        attempts = (parsed or {}).get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if isinstance(attempts, int):
            record_retries("s3", attempts)

    client.meta.events.register("after-call.s3", after_call)


def prepare_workers(workers: int) -> str | None:
    """Before `serve` starts several workers: the folder their counters go to, emptied of an
    earlier run's (`PROMETHEUS_MULTIPROC_DIR` if set, else a new temporary folder, returned so
    `serve` removes it when it ends). The workers inherit the variable and import prometheus-client
    after it is set, as its multiprocess mode needs. One worker keeps its counters in memory
    (unless the caller set the variable)."""
    folder, created = multiprocess_dir(), None
    if folder is None and workers > 1:
        folder = created = tempfile.mkdtemp(prefix="loraledger-metrics-")
        os.environ[MULTIPROC_DIR] = folder
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        # An earlier run's files go; this process's own (it may serve, with one worker) stay.
        for stale in Path(folder).glob("*.db"):
            if not stale.stem.endswith(f"_{os.getpid()}"):
                stale.unlink(missing_ok=True)
    return created


def remove_workers_dir(created: str | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR) or None


def scrape_text(*extra: Collector) -> bytes:
    """The text exposition: this process's (or, in multiprocess mode, every worker's) counters,
    then the `extra` collectors (the state read from the ledger)."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    state = CollectorRegistry()
    for collector in extra:
        state.register(collector)
    return counted + generate_latest(state)


def process_stopped(pid: int) -> None:
    """A worker's exit, in multiprocess mode (its counter files stay; they are summed)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
