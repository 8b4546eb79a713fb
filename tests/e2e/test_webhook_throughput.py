"""Figures, not assertions: how fast the real server takes repeat webhook deliveries.

Run with `pytest tests/e2e -m slow -s` to see the printed numbers.
"""

from __future__ import annotations

import json
import statistics
import threading
import time

import httpx
import pytest

from tests.e2e.conftest import HTTP_TIMEOUT, LedgerServer, traceback_excerpt

DELIVERIES = 200
CONCURRENCY = 8


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def _report(label: str, latencies: list[float], elapsed: float, statuses: list[int | str]) -> None:
    codes: dict[str, int] = {}
    for status in statuses:
        codes[str(status)] = codes.get(str(status), 0) + 1
    print(
        f"\n[e2e throughput] {label}: {len(latencies)} deliveries in {elapsed:.2f}s = "
        f"{len(latencies) / elapsed:.1f} webhooks/s; "
        f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"answers {codes}; p50 of the first/last 50: {statistics.median(latencies[:50]) * 1000:.1f}/"
        f"{statistics.median(latencies[-50:]) * 1000:.1f} ms"
    )


@pytest.mark.slow
def test_repeat_webhook_deliveries_throughput_and_p99_latency(server: LedgerServer) -> None:
    job_id = server.started_job(1, "V9", parameters={"learning_rate": 0.0003})
    body = json.dumps(dict(server.stub.complete(job_id))).encode()  # first delivery completes it
    url = server.webhook_url()
    headers = {"content-type": "application/json"}

    # Sequential: one client, one delivery after the other.
    latencies: list[float] = []
    statuses: list[int | str] = []
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        began = time.perf_counter()
        for _ in range(DELIVERIES):
            sent = time.perf_counter()
            statuses.append(client.post(url, content=body, headers=headers).status_code)
            latencies.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - began
    _report("sequential", latencies, elapsed, statuses)

    # Concurrent: CONCURRENCY clients sharing DELIVERIES deliveries.
    lock = threading.Lock()
    concurrent_latencies: list[float] = []
    concurrent_statuses: list[int | str] = []
    remaining = [DELIVERIES]

    def worker() -> None:
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                sent = time.perf_counter()
                try:
                    status: int | str = client.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                took = time.perf_counter() - sent
                with lock:
                    concurrent_latencies.append(took)
                    concurrent_statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - began
    _report(f"concurrent x{CONCURRENCY}", concurrent_latencies, elapsed, concurrent_statuses)

    history = server.history(1, "V9")
    types = [event["type"] for event in history]
    print(
        f"[e2e throughput] history of V9: {types.count('TrainingCompleted')} TrainingCompleted, "
        f"{types.count('WebhookRepeated')} WebhookRepeated, {len(types)} events; "
        f"GET training_versions.json is {len(server.document_bytes(1) or b'')} bytes"
    )

    # Figures are not asserted; a repeat delivery answered with anything but 200 is a bug.
    not_ok = [s for s in statuses + concurrent_statuses if s != 200]
    assert types.count("TrainingCompleted") == 1
    assert not_ok == [], traceback_excerpt(server.stderr_text(), tail=8)
