"""Pages benchmark: the version page of a version with E events and the list of S subjects.

The store gets S styles of one pending version each, and style 1's V1 is completed by a webhook
report and then receives repeats of it until its history holds E events (each with its decision
and candidates, the heaviest event the timeline draws), all through the Ledger's own commands
(batched saves, bench/common.py). `loraledger serve` (SQLite, one process) then answers R
sequential GETs of each page from one keep-alive client over loopback: the latency the client
saw. Then the same app in this process renders each page R times by calling its route (no
HTTP): the server-side time, as wall clock and as the rendering thread's CPU time (the machine's
load average is printed beside them: on a shared machine the wall clock waits for a core).

Targets (the issue): each page renders in <= 200 ms on the server (E = 200, S = 1,000); judged
on the server-side p50 wall clock.

`python -m bench.pages_bench [--events 200] [--subjects 1000] [--requests 50] [--quick]`
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from bench.common import Report, Target, bulk_ledger, create_pending, job_id_for, percentile
from bench.webhook_bench import Server
from loraledger.adapters.store import prepare_store, store_env
from loraledger.domain.observations import JobReport

LIMIT_MS = 200
WARM_UP = 5


def build(database_url: str, subjects: int, events: int) -> int:
    """S styles of one version each; style 1's V1 with `events` events. Returns V1's event count."""
    prepare_store(database_url)
    ledger, store = bulk_ledger(store_env(database_url))
    create_pending(ledger, [(style_id, 1) for style_id in range(1, subjects + 1)])
    report = JobReport(
        job_id=job_id_for(1, 1),
        status="COMPLETED",
        output_status="success",
        model_name="style_1_vV1",
        lora_url="https://bucket.s3.amazonaws.com/models/style_1_vV1.safetensors",
    )
    for _ in range(events - len(store.history(1, "V1"))):
        ledger.reports.apply(report)
    store.flush()
    count = len(store.history(1, "V1"))
    ledger.close()
    return count


def measure(client: httpx.Client, url: str, requests: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    size = 0
    for i in range(WARM_UP + requests):
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
        response.raise_for_status()
        size = len(response.content)
        if i >= WARM_UP:
            latencies.append(elapsed)
    return latencies, size


def render_in_process(
    database_url: str, work: Path, requests: int
) -> dict[str, tuple[list[float], list[float]]]:
    """(wall ms, CPU ms) of each page's route called in this process, after warm-up."""
    os.environ.update(LORALEDGER_DATABASE_URL=database_url, LORALEDGER_OUTPUT_DIR=str(work / "in-process"))
    from loraledger.api import pages
    from loraledger.api.http import create_app

    timings: dict[str, tuple[list[float], list[float]]] = {}
    with TestClient(create_app()) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        routes: dict[str, Callable[[], object]] = {
            "version page": lambda: pages.version_page("1", "V1", service, False, ""),
            "subjects list": lambda: pages.subjects_page(service, False),
        }
        for label, route in routes.items():
            walls: list[float] = []
            cpus: list[float] = []
            for i in range(WARM_UP + requests):
                wall, cpu = time.perf_counter(), time.thread_time()
                route()
                if i >= WARM_UP:
                    walls.append((time.perf_counter() - wall) * 1000)
                    cpus.append((time.thread_time() - cpu) * 1000)
            timings[label] = (walls, cpus)
    return timings


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200, help="events in the version's history")
    parser.add_argument("--subjects", type=int, default=1_000, help="styles in the list")
    parser.add_argument("--requests", type=int, default=50, help="GETs of each page (after warm-up)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 10
    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-pages-"))
    pages = {
        f"version page ({args.events} events)": "/ui/styles/1/versions/V1",
        f"subjects list ({args.subjects:,} styles)": "/ui/",
        "style page": "/ui/styles/1",
        "style page at an earlier time": "/ui/styles/1?at=2000-01-01T00:00:00Z",
    }
    measured: dict[str, tuple[list[float], int]] = {}
    try:
        database_url = f"sqlite:///{root / 'ledger.db'}"
        events = build(database_url, args.subjects, args.events)
        server = Server(root, database_url, 1)
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                for label, path in pages.items():
                    measured[label] = measure(client, path, args.requests)
        finally:
            server.stop()
        in_process = render_in_process(database_url, root, args.requests)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = Report(
        name="pages",
        title="Pages over HTTP (`loraledger serve`, SQLite)",
        columns=["page", "requests", "answer KB", "p50 ms", "p99 ms", "max ms"],
        parameters={"events": events, "subjects": args.subjects, "requests": args.requests},
    )
    for label, (latencies, size) in measured.items():
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        report.rows.append([label, len(latencies), size / 1024, p50, p99, max(latencies)])
    load = os.getloadavg()[0]
    report.extra_tables.append(
        (
            f"Server side, in process (load average {load:.1f} on {os.cpu_count()} cores)",
            ["page", "renders", "p50 wall ms", "p99 wall ms", "p50 CPU ms"],
            [
                [label, len(walls), percentile(walls, 50), percentile(walls, 99), percentile(cpus, 50)]
                for label, (walls, cpus) in in_process.items()
            ],
        )
    )
    sizes = {"version page": f"{events} events", "subjects list": f"{args.subjects:,} styles"}
    for label, (walls, cpus) in in_process.items():
        p50 = percentile(walls, 50)
        report.targets.append(
            Target(
                f"{label} ({sizes[label]}) rendered on the server",
                f"<= {LIMIT_MS} ms",
                f"p50 {p50:.1f} ms wall, {percentile(cpus, 50):.1f} ms CPU",
                p50 <= LIMIT_MS,
            )
        )
    report.notes = [
        f"One keep-alive client, sequential GETs, loopback; {WARM_UP} warm-up requests per page not counted.",
        "Targets are judged on the server-side p50 wall clock; the HTTP table adds uvicorn and loopback.",
    ]
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
