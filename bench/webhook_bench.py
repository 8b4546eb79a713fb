"""Webhook benchmark: RunPod deliveries against a running `loraledger serve`, over loopback.

For each store set-up (SQLite in one process; PostgreSQL with `--workers 1` and `--workers 4`): K
versions are started through the Ledger's commands (request + RunPod job id), the server is started,
and for 1, 8 and 32 concurrent clients (asyncio + httpx, one connection each) webhook bodies shaped
like tests/fixtures/runpod/webhook_completed_*.json are POSTed: first deliveries (each completes a
pending version) and then repeats of already delivered jobs. Each phase is bounded by a count and a
time. Reported: deliveries/s, p50/p99 latency as the client saw it, and errors (non-2xx or an
unexpected `result`), which must be 0.

Targets (the issue): SQLite, one process, 32 concurrent, first deliveries: >= 600/s with p99 <= 50 ms
and <= 1.5 ms of server CPU per webhook; during that phase, the style's file on disk shows a delivery
within 250 ms (p99) of its answer (from which GET shows it); PostgreSQL: 4 processes >= 2 x 1, 0 errors.

`python -m bench.webhook_bench [--versions 6000] [--styles 100] [--count 2000] [--seconds 6] [--quick]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO,
    Report,
    Target,
    bulk_ledger,
    clean_env,
    cli_command,
    create_pending,
    drop_postgres_schema,
    free_port,
    fresh_postgres_url,
    job_id_for,
    percentile,
    postgres_available,
)
from loraledger.adapters.store import prepare_store, store_env

SECRET = "bench-webhook-secret"
FIXTURE = REPO / "tests/fixtures/runpod/webhook_completed_33c95471-5e61-406c-9287-1b8f8de0bae8-e1.json"
LEVELS = (1, 8, 32)
WARMUP = 50


@dataclass(slots=True)
class Phase:
    store: str
    workers: int
    concurrency: int
    kind: str
    deliveries: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    error_samples: list[str]
    server_cpu_ms: float = 0.0  # server processes' CPU per delivery
    client_cpu_ms: float = 0.0  # this (client) process's CPU per delivery

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0

    def row(self) -> list[Any]:
        lat = self.latencies_ms or [0.0]
        return [
            self.store,
            self.workers,
            self.concurrency,
            self.kind,
            self.deliveries,
            self.rate,
            percentile(lat, 50),
            percentile(lat, 99),
            max(lat),
            self.server_cpu_ms,
            self.client_cpu_ms,
            self.errors,
        ]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (uvicorn's workers), from /proc."""
    total = 0.0
    pending = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def measured_phase(
    server: Server,
    url: str,
    bodies: list[bytes],
    expected: str,
    concurrency: int,
    seconds: float,
    on_answer: Callable[[bytes], None] | None = None,
) -> tuple[float, list[float], int, list[str], int, float, float]:
    """`fire`, plus the server's and this client's CPU per delivery (ms)."""
    server_before, client_before = tree_cpu_seconds(server.process.pid), time.process_time()
    elapsed, latencies, errors, samples, sent = asyncio.run(
        fire(url, bodies, expected, concurrency, seconds, on_answer)
    )
    server_cpu = tree_cpu_seconds(server.process.pid) - server_before
    client_cpu = time.process_time() - client_before
    per = 1000 / max(1, sent)
    return elapsed, latencies, errors, samples, sent, server_cpu * per, client_cpu * per


class FreshnessWatch:
    """How long after its 200 answer (from then on GET shows it) a completed version shows in its
    style's file on disk: every SAMPLE_EVERY-th delivery is watched, the files polled every few ms
    by a thread of this (client) process."""

    SAMPLE_EVERY = 8
    POLL_SECONDS = 0.005

    def __init__(self, styles_dir: Path) -> None:
        self.styles_dir = styles_dir
        self.waiting: dict[tuple[int, str], float] = {}
        self.lags_ms: list[float] = []
        self.missed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._count = 0

    def answered(self, body: bytes) -> None:
        self._count += 1
        if self._count % self.SAMPLE_EVERY:
            return
        model = json.loads(body)["input"]["training_config"]["model_name"]  # style_<s>_vV<n>
        style, version = model.removeprefix("style_").split("_v")
        with self._lock:
            self.waiting[(int(style), version)] = time.perf_counter()

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                waiting = list(self.waiting.items())
            by_style: dict[int, list[tuple[str, float]]] = {}
            for (style, version), since in waiting:
                by_style.setdefault(style, []).append((version, since))
            for style, versions in by_style.items():
                try:
                    entries = json.loads(
                        (self.styles_dir / str(style) / "training_versions.json").read_bytes()
                    )
                except (OSError, ValueError):
                    continue
                done = {e.get("name") for e in entries.get("versions", ()) if e.get("status") == "completed"}
                now = time.perf_counter()
                with self._lock:
                    for version, since in versions:
                        if version in done:
                            self.waiting.pop((style, version), None)
                            self.lags_ms.append((now - since) * 1000)
            self._stop.wait(self.POLL_SECONDS)

    def __enter__(self) -> FreshnessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        deadline = time.monotonic() + 10
        while self.waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        self.missed = len(self.waiting)


def webhook_body(template: dict[str, Any], style_id: int, number: int) -> bytes:
    """The fixture's body for this version's job: job id, model name and LoRA URL replaced."""
    body = copy.deepcopy(template)
    model = f"style_{style_id}_vV{number}"
    url = f"https://storyboard-user-files.s3-accelerate.amazonaws.com/actor_maker_user/custom-styles-models/{model}.safetensors"
    body["id"] = job_id_for(style_id, number)
    body["input"]["training_config"]["model_name"] = model
    body["output"]["loraName"] = f"{model}.safetensors"
    body["output"]["loraUrl"] = url
    body["output"]["model_info"]["download_url"] = url
    body["output"]["model_info"]["name"] = f"{model}.safetensors"
    return json.dumps(body).encode()


class Server:
    """One `loraledger serve` process (uvicorn, N workers) on a free loopback port."""

    def __init__(self, work: Path, database_url: str, workers: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = clean_env(
            LORALEDGER_DATABASE_URL=database_url,
            LORALEDGER_OUTPUT_DIR=str(work / "styles"),
            LORALEDGER_WEBHOOK_SECRET=SECRET,
        )
        self.log = open(work / f"serve-{workers}.log", "wb")  # noqa: SIM115 - closed in stop()
        command = cli_command("serve", "--port", str(self.port), "--workers", str(workers))
        self.process = subprocess.Popen(
            command, env=env, cwd=work, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"loraledger serve exited: {(work / f'serve-{workers}.log').read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("loraledger serve did not become healthy in 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


async def fire(
    url: str,
    bodies: list[bytes],
    expected: str,
    concurrency: int,
    seconds: float,
    on_answer: Callable[[bytes], None] | None = None,
) -> tuple[float, list[float], int, list[str], int]:
    """POST bodies (each once) from `concurrency` clients until all are sent or `seconds` pass.

    Returns (seconds, latencies of answered requests, errors, a few error texts, requests sent)."""
    latencies: list[float] = []
    errors: list[str] = []
    sent_count = 0
    queue = iter(bodies)
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            for body in queue:
                if time.perf_counter() > deadline:
                    return
                nonlocal sent_count
                sent_count += 1
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                elif response.json().get("result") != expected:
                    errors.append(f"result {response.json().get('result')!r}, expected {expected!r}")
                elif on_answer is not None:
                    on_answer(body)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, len(errors), errors[:5], sent_count


def bench_setup(
    store: str,
    workers: int,
    args: argparse.Namespace,
    root: Path,
    template: dict[str, Any],
    freshness: dict[str, Any],
) -> list[Phase]:
    work = root / f"{store}-{workers}"
    work.mkdir()
    database_url = f"sqlite:///{work / 'ledger.db'}" if store == "sqlite" else fresh_postgres_url("webhook")
    try:
        prepare_store(database_url)
        versions = [(i % args.styles + 1, i // args.styles + 1) for i in range(args.versions + WARMUP)]
        ledger, _ = bulk_ledger(store_env(database_url))
        # PostgreSQL: small transactions (see create_pending: a large pipelined insert hung twice)
        create_pending(ledger, versions, flush_every=500 if store == "sqlite" else 50)
        ledger.close()
        bodies = [webhook_body(template, style, number) for style, number in versions]
        warmup, fresh = bodies[:WARMUP], bodies[WARMUP:]
        server = Server(work, database_url, workers)
        try:
            url = f"{server.base_url}/webhooks/runpod?token={SECRET}"
            asyncio.run(fire(url, warmup, "applied", min(8, workers * 2), 60))
            phases: list[Phase] = []
            delivered: list[bytes] = []
            for concurrency in LEVELS:
                batch, fresh = fresh[: args.count], fresh[args.count :]
                watch = FreshnessWatch(work / "styles")
                with (
                    watch if (store, workers, concurrency) == ("sqlite", 1, 32) else contextlib.nullcontext()
                ):
                    elapsed, latencies, errors, samples, sent, server_ms, client_ms = measured_phase(
                        server, url, batch, "applied", concurrency, args.seconds, watch.answered
                    )
                if watch.lags_ms or watch.missed:
                    freshness.update(lags_ms=watch.lags_ms, missed=watch.missed)
                delivered.extend(batch[:sent])
                phases.append(
                    Phase(
                        store,
                        workers,
                        concurrency,
                        "first",
                        sent,
                        elapsed,
                        latencies,
                        errors,
                        samples,
                        server_ms,
                        client_ms,
                    )
                )
                print(f"  {phases[-1].row()}", flush=True)
                repeats = (delivered * (args.count // max(1, len(delivered)) + 1))[: args.count]
                elapsed, latencies, errors, samples, sent, server_ms, client_ms = measured_phase(
                    server, url, repeats, "repeat", concurrency, args.seconds
                )
                phases.append(
                    Phase(
                        store,
                        workers,
                        concurrency,
                        "repeat",
                        sent,
                        elapsed,
                        latencies,
                        errors,
                        samples,
                        server_ms,
                        client_ms,
                    )
                )
                print(f"  {phases[-1].row()}", flush=True)
        finally:
            server.stop()
        return phases
    finally:
        if store == "postgres":
            drop_postgres_schema(database_url)


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=6000, help="pending versions (jobs) per set-up")
    parser.add_argument("--styles", type=int, default=100, help="styles the versions are spread over")
    parser.add_argument("--count", type=int, default=2000, help="deliveries per phase at most")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per phase at most")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--quick", action="store_true", help="smoke run: 600 versions, 200 per phase, 2 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.versions, args.count, args.seconds = 600, 200, 2.0
    setups = [("sqlite", 1)]
    postgres = not args.no_postgres and postgres_available()
    if postgres:
        setups += [("postgres", 1), ("postgres", 4)]
    template = json.loads(FIXTURE.read_text())

    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-webhook-"))
    phases: list[Phase] = []
    freshness: dict[str, Any] = {}
    try:
        for store, workers in setups:
            print(f"webhooks: {store}, {workers} process(es) ...", flush=True)
            phases.extend(bench_setup(store, workers, args, root, template, freshness))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = Report(
        name="webhooks",
        title="RunPod webhooks against `loraledger serve` (loopback, client latency)",
        columns=[
            "store",
            "processes",
            "clients",
            "deliveries",
            "n",
            "per s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "server CPU ms/delivery",
            "client CPU ms/delivery",
            "errors",
        ],
        parameters={
            "versions": args.versions,
            "styles": args.styles,
            "count_per_phase": args.count,
            "seconds_per_phase": args.seconds,
            "levels": LEVELS,
            "postgres": postgres,
            "client": "asyncio + httpx.AsyncClient, one keep-alive connection per client, same machine",
        },
    )
    report.rows = [p.row() for p in phases]
    top = next(p for p in phases if (p.store, p.workers, p.concurrency, p.kind) == ("sqlite", 1, 32, "first"))
    p99 = percentile(top.latencies_ms or [0.0], 99)
    report.targets.append(
        Target(
            "webhooks, SQLite, 1 process, 32 concurrent, first deliveries",
            ">= 600/s, p99 <= 50 ms, 0 errors",
            f"{top.rate:.0f}/s, p99 {p99:.1f} ms, {top.errors} errors",
            top.rate >= 600 and p99 <= 50 and top.errors == 0,
        )
    )
    report.targets.append(
        Target(
            "webhooks, SQLite, 32 concurrent, first: server CPU per webhook",
            "<= 1.5 ms",
            f"{top.server_cpu_ms:.2f} ms",
            top.server_cpu_ms <= 1.5,
        )
    )
    lags = freshness.get("lags_ms", [])
    lag99 = percentile(lags, 99) if lags else float("inf")
    report.targets.append(
        Target(
            "freshness under load: the file catches up with GET (SQLite, 32 concurrent, first)",
            "p99 <= 250 ms, none missing",
            f"p50 {percentile(lags, 50) if lags else float('nan'):.0f} ms, p99 {lag99:.0f} ms over "
            f"{len(lags)} sampled deliveries, {freshness.get('missed', 0)} never seen",
            lag99 <= 250 and not freshness.get("missed", 0),
        )
    )
    if postgres:
        one = next(
            p for p in phases if (p.store, p.workers, p.concurrency, p.kind) == ("postgres", 1, 32, "first")
        )
        four = next(
            p for p in phases if (p.store, p.workers, p.concurrency, p.kind) == ("postgres", 4, 32, "first")
        )
        report.targets.append(
            Target(
                "webhooks, PostgreSQL, 32 concurrent, first: 4 processes >= 2 x 1, 0 errors",
                "rate(4) >= 2 x rate(1), 0 errors",
                f"{four.rate:.0f}/s vs {one.rate:.0f}/s ({four.rate / max(one.rate, 1e-9):.2f} x), "
                f"{four.errors + one.errors} errors",
                four.rate >= 2 * one.rate and four.errors + one.errors == 0,
            )
        )
    total_errors = sum(p.errors for p in phases)
    report.targets.append(Target("no errors", "0", str(total_errors), total_errors == 0))
    report.notes = [
        "first: each delivery completes a pending version (TrainingCompleted); repeat: a delivery of a "
        "job already completed (WebhookRepeated). Each records one event; the style's file is written by "
        "the server's projection (on its background writer in versions that have one).",
        "The client runs on the same 2-core machine as the server and takes CPU from it. Server CPU: user + "
        "system time of the server process and its workers (/proc) per delivery; one process cannot use "
        "more than one core for Python code (GIL), so 1000 / (server CPU ms) bounds its rate.",
    ]
    report.data = {
        "phases": [[*p.row(), p.seconds] for p in phases],
        "error_samples": {f"{p.store}-{p.workers}-{p.concurrency}-{p.kind}": p.error_samples for p in phases},
        "freshness_ms": freshness.get("lags_ms", []),
        "freshness_missed": freshness.get("missed", 0),
    }
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
