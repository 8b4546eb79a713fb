"""History benchmark: `GET /styles/{id}/versions/{name}/history` of a version with E events.

One version is started through the Ledger's commands (request + RunPod job id), completed by a
webhook report, and then receives repeats of that webhook until its history holds E events
(batched saves, as bench/common.py's BulkLedgerStore gathers them). `loraledger serve` (SQLite, one
process) then answers R sequential GETs from one keep-alive client; latency as the client saw it.

Target (the issue): p50 <= 20 ms at E = 1,000.

`python -m bench.history_bench [--events 1000] [--requests 200] [--quick]`
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import Report, Target, bulk_ledger, create_pending, job_id_for, percentile
from bench.webhook_bench import Server
from loraledger.adapters.store import prepare_store, store_env
from loraledger.domain.observations import JobReport


def build_history(database_url: str, events: int) -> int:
    """Style 1, V1: started, completed, then repeats until it has `events` events; returns its count."""
    prepare_store(database_url)
    ledger, store = bulk_ledger(store_env(database_url))
    create_pending(ledger, [(1, 1)])
    report = JobReport(
        job_id=job_id_for(1, 1),
        status="COMPLETED",
        output_status="success",
        model_name="style_1_vV1",
        lora_url="https://bucket.s3.amazonaws.com/models/style_1_vV1.safetensors",
    )
    have = len(store.history(1, "V1"))
    for _ in range(events - have):
        ledger.reports.apply(report)
    store.flush()
    count = len(store.history(1, "V1"))
    ledger.close()
    return count


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000, help="events in the version's history")
    parser.add_argument("--requests", type=int, default=200, help="GETs (after 10 of warm-up)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 50
    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-history-"))
    try:
        database_url = f"sqlite:///{root / 'ledger.db'}"
        events = build_history(database_url, args.events)
        server = Server(root, database_url, 1)
        latencies: list[float] = []
        size = 0
        try:
            url = f"{server.base_url}/styles/1/versions/V1/history"
            with httpx.Client(timeout=30) as client:
                for i in range(10 + args.requests):
                    start = time.perf_counter()
                    response = client.get(url)
                    elapsed = (time.perf_counter() - start) * 1000
                    response.raise_for_status()
                    size = len(response.content)
                    if i >= 10:
                        latencies.append(elapsed)
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    report = Report(
        name="history",
        title="A version's history over HTTP (`loraledger serve`, SQLite)",
        columns=["events", "requests", "answer KB", "p50 ms", "p99 ms", "max ms"],
        parameters={"events": args.events, "requests": args.requests},
    )
    report.rows.append([events, len(latencies), size / 1024, p50, p99, max(latencies)])
    report.targets.append(
        Target(
            f"history of a version with {events:,} events over HTTP",
            "p50 <= 20 ms",
            f"p50 {p50:.1f} ms (p99 {p99:.1f} ms)",
            p50 <= 20,
        )
    )
    report.notes = ["One keep-alive client, sequential GETs, loopback; 10 warm-up requests not counted."]
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
