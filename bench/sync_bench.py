"""Sync benchmark: N LoRA files over M styles in the moto S3 test server, half with a pending version.

For each N, on the same bucket and listing:

  a  raw boto3 paginated listing of the prefix (this process; the raw limit underneath)
  b  the old system's per-file algorithm (bench/old_sync.py) on that listing, from the same start files
  c  loraledger's first sync: `loraledger sync` as a child process (process start, imports, listing,
     matching, events, and writing every style's file included)
  d  the same command again with nothing new
  append  the store's raw batched append (`recorder.insert_events`) of the very events c recorded,
     copied into an empty store of the same kind, 1,000 per call

Targets (the issue): d <= 1.1 x a with 0 events at 20k and 100k; (c - a) <= b / 20 at 20k files over
200 styles; c <= 1.3 x (a + append) at the largest N (100k); peak memory stated.

`python -m bench.sync_bench [--sizes 1000,20000,100000] [--styles 200] [--old-budget 60] [--phases 20000]
[--profile] [--quick]`
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from eventsourcing.persistence import StoredEvent

from bench.common import (
    FAKE_AWS,
    RESULTS,
    S3_PREFIX,
    Report,
    S3Host,
    Target,
    bulk_ledger,
    clean_env,
    cli_command,
    create_pending,
    file_layout,
    run_measured,
)
from bench.old_sync import JSON_LIBRARY, old_sync
from loraledger.adapters.store import store_env
from loraledger.api.bootstrap import open_service
from loraledger.api.settings import Settings
from loraledger.application.store import LedgerStore

APPEND_BATCH = 1000
EVENTS_LINE = re.compile(r"(\d+) events recorded")


def raw_listing(endpoint_url: str, bucket: str, prefix: str) -> tuple[float, list[tuple[str, str]]]:
    """(seconds, [(key, LastModified ISO)]) of a plain boto3 paginator, client creation included."""
    start = time.perf_counter()
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=FAKE_AWS["AWS_DEFAULT_REGION"],
        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    objects: list[tuple[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            objects.append((item["Key"], item["LastModified"]))
    seconds = time.perf_counter() - start
    listed = [
        (key, modified.strftime("%Y-%m-%dT%H:%M:%S.") + f"{modified.microsecond // 1000:03d}Z")
        for key, modified in objects
    ]
    return seconds, listed


def raw_append(source_url: str, after: int, target_url: str, encoded_url: str) -> tuple[float, float, int]:
    """Time `recorder.insert_events` of the events after notification `after` of `source_url`, copied
    as they are into a new store at `target_url` in batches of APPEND_BATCH; and the same with each
    event decoded beforehand and encoded again by the mapper in the timed part (into `encoded_url`)."""
    source = LedgerStore(store_env(source_url))
    events: list[StoredEvent] = []
    position = after
    while True:
        batch = source.recorder.select_notifications(position + 1, 10_000)
        if not batch:
            break
        position = batch[-1].id
        events.extend(StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in batch)
    target = LedgerStore(store_env(target_url))
    start = time.perf_counter()
    for i in range(0, len(events), APPEND_BATCH):
        target.recorder.insert_events(events[i : i + APPEND_BATCH])
    seconds = time.perf_counter() - start
    target.close()
    domain_events = [source.mapper.to_domain_event(e) for e in events]
    target = LedgerStore(store_env(encoded_url))
    start = time.perf_counter()
    for i in range(0, len(domain_events), APPEND_BATCH):
        target.recorder.insert_events(
            [target.mapper.to_stored_event(e) for e in domain_events[i : i + APPEND_BATCH]]
        )
    encoded_seconds = time.perf_counter() - start
    target.close()
    source.close()
    return seconds, encoded_seconds, len(events)


def notification_head(database_url: str) -> int:
    ledger = LedgerStore(store_env(database_url))
    try:
        return int(ledger.recorder.max_notification_id() or 0)
    finally:
        ledger.close()


def warm_resync(settings: Settings, database_url: str) -> tuple[float, int]:
    """The re-sync a running server does for `POST /sync/s3`: `Service.sync()` in a process whose
    projection has caught up and whose S3 client exists (as a server's do after its first sync).
    Aggregates are read from the store (the server's cache would hold them). Returns (seconds, events)."""
    service = open_service(settings)
    try:
        service.catch_up()  # what the server did at its start, untimed
        assert service.clients.s3 is not None  # its S3 client, made once at its first sync (~0.2 s), untimed
        head = notification_head(database_url)
        start = time.perf_counter()
        service.sync()
        seconds = time.perf_counter() - start
        return seconds, notification_head(database_url) - head
    finally:
        service.close()


def extra_runs(work: Path, env: dict[str, str], files: int, *, profile: bool, phases: bool) -> dict[str, Any]:
    """On copies of the store and files taken before c: `loraledger sync` twice (first, then nothing
    new) under bench.phases timers and/or pyinstrument. Returns the phase timings."""
    found: dict[str, Any] = {}
    runs = (["phases"] if phases else []) + (["profile"] if profile else [])
    for kind in runs:
        copy = work.with_name(f"{work.name}-{kind}")
        shutil.copytree(work, copy)
        copy_env = env | {
            "LORALEDGER_DATABASE_URL": f"sqlite:///{copy / 'ledger.db'}",
            "LORALEDGER_OUTPUT_DIR": str(copy / "styles"),
        }
        for label in ("first", "resync"):
            if kind == "phases":
                out = copy / f"phases-{label}.json"
                command = [sys.executable, "-m", "bench.phases", str(out), "sync"]
                ran = run_measured(command, env=copy_env, cwd=copy)
                found[label] = {"wall": ran.seconds, "phases": json.loads(out.read_text())}
            else:
                RESULTS.mkdir(parents=True, exist_ok=True)
                out = RESULTS / f"profile-sync-{label}-{files}.txt"
                command = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out), "-c"]
                command.append(
                    "import sys; sys.argv = ['loraledger', 'sync']; "
                    "from loraledger.api.cli import main; main()"
                )
                ran = run_measured(command, env=copy_env, cwd=copy)
                print(
                    f"profile of the {label} sync ({ran.seconds:.1f} s under the profiler): {out}", flush=True
                )
        shutil.rmtree(copy, ignore_errors=True)
    return found


def bench_size(
    host: S3Host,
    files: int,
    styles: int,
    old_budget: float,
    root: Path,
    *,
    keep: bool,
    profile: bool,
    phases: bool,
) -> dict[str, Any]:
    work = root / f"sync-{files}"
    work.mkdir()
    bucket = f"bench-sync-{files}-{uuid.uuid4().hex[:8]}"
    seeded = host.seed(bucket, S3_PREFIX, files, styles)
    database_url = f"sqlite:///{work / 'ledger.db'}"
    env = clean_env(
        LORALEDGER_DATABASE_URL=database_url,
        LORALEDGER_OUTPUT_DIR=str(work / "styles"),
        LORALEDGER_S3_BUCKET=bucket,
        LORALEDGER_S3_ENDPOINT_URL=host.endpoint_url,
        LORALEDGER_S3_PREFIX=S3_PREFIX,
    )
    # Half the files have a pending version waiting: odd version numbers, started through the Ledger.
    pending = [(s, n) for s, n in file_layout(files, styles) if n % 2 == 1]
    start = time.perf_counter()
    ledger, _ = bulk_ledger(store_env(database_url))
    pending_events = create_pending(ledger, pending)
    ledger.close()
    settings = Settings(
        database_url=database_url,
        output_dir=str(work / "styles"),
        s3_bucket=bucket,
        s3_endpoint_url=host.endpoint_url,
        s3_prefix=S3_PREFIX,
    )
    service = open_service(settings)
    service.rebuild()  # the files as the running service would have them before the sync
    url_base = settings.effective_lora_url_base
    service.close()
    assert url_base is not None
    shutil.copytree(work / "styles", work / "old-styles", ignore=shutil.ignore_patterns(".*"))  # start files
    prepared = time.perf_counter() - start

    # a: the raw listing (best of two at small sizes, where a single run is noisy)
    a, listing = raw_listing(host.endpoint_url, bucket, S3_PREFIX)
    if files <= 20_000:
        a = min(a, raw_listing(host.endpoint_url, bucket, S3_PREFIX)[0])
    assert len(listing) == files, (len(listing), files)

    # b: the old algorithm, style by style in listing order until the budget is spent. Its time is
    # mostly small-file writes, which vary a lot on a shared disk: up to 20k files it runs twice, from
    # fresh copies of the start files, and the faster run counts (in the old algorithm's favour).
    by_style: dict[str, list[tuple[str, str]]] = {}
    for key, modified in listing:
        by_style.setdefault(key.rsplit("/", 1)[-1].split("_")[1], []).append((key, modified))
    runs: list[tuple[float, float, int, dict[str, int]]] = []
    for attempt in range(2 if files <= 20_000 else 1):
        old_dir = work / f"old-styles-{attempt}"
        shutil.copytree(work / "old-styles", old_dir)
        os.sync()  # files just written must not slow the first old writes
        old_files = old_seconds = 0.0
        old_styles = 0
        counts = {"matched_pending": 0, "created": 0, "matched_synced": 0}
        for style_files in by_style.values():
            result = old_sync(style_files, old_dir, url_base)
            old_files += result.files
            old_seconds += result.seconds
            old_styles += 1
            for name in counts:
                counts[name] += getattr(result, name)
            if old_seconds > old_budget:
                break
        runs.append((old_seconds * files / old_files, old_seconds, old_styles, counts))
        shutil.rmtree(old_dir, ignore_errors=True)
    b, old_seconds, old_styles, counts = min(runs, key=lambda run: run[0])
    old_files = old_seconds and files * old_seconds / b
    b_runs = [run[0] for run in runs]
    b_extrapolated = old_styles < len(by_style)

    # process start alone, for reference
    start_only = run_measured(cli_command("--help"), env=env, cwd=work)

    extra_copy = root / f"extra-{files}"
    if profile or phases:  # a copy of the store and files, for extra runs after the timed ones
        shutil.copytree(work, extra_copy, ignore=shutil.ignore_patterns("old-styles*"))
    # Up to 20k files c and d also run on a copy taken now, and the faster of the two runs counts
    # (other work on a shared machine can slow one run by 2x; the events recorded must be the same).
    second = root / f"second-{files}"
    if files <= 20_000:
        shutil.copytree(work, second, ignore=shutil.ignore_patterns("old-styles*"))

    # c: first sync, d: re-sync with nothing new
    head0 = notification_head(database_url)
    c = run_measured(cli_command("sync"), env=env, cwd=work)
    if c.returncode != 0:
        raise RuntimeError(f"loraledger sync failed ({c.returncode}): {c.stderr[-2000:]}")
    head1 = notification_head(database_url)
    d = run_measured(cli_command("sync"), env=env, cwd=work)
    if d.returncode != 0:
        raise RuntimeError(f"loraledger re-sync failed ({d.returncode}): {d.stderr[-2000:]}")
    head2 = notification_head(database_url)
    c_runs, d_runs = [c.seconds], [d.seconds]
    if files <= 20_000:
        second_url = f"sqlite:///{second / 'ledger.db'}"
        second_env = env | {
            "LORALEDGER_DATABASE_URL": second_url,
            "LORALEDGER_OUTPUT_DIR": str(second / "styles"),
        }
        c2 = run_measured(cli_command("sync"), env=second_env, cwd=second)
        between = notification_head(second_url)
        d2 = run_measured(cli_command("sync"), env=second_env, cwd=second)
        assert between - head0 == head1 - head0 and notification_head(second_url) == between
        c_runs.append(c2.seconds)
        d_runs.append(d2.seconds)
        c = min(c, c2, key=lambda run: run.seconds)
        d = min(d, d2, key=lambda run: run.seconds)
        shutil.rmtree(second, ignore_errors=True)
    d_warm, d_warm_events = warm_resync(settings, database_url)
    c_events, d_events = head1 - head0, head2 - head1
    reported = EVENTS_LINE.search(c.stdout)
    assert reported is not None and int(reported.group(1)) == c_events, c.stdout[:500]

    append_seconds, append_encoded, appended = raw_append(
        database_url, head0, f"sqlite:///{work / 'raw-append.db'}", f"sqlite:///{work / 'encoded-append.db'}"
    )
    assert appended == c_events
    extra = extra_runs(extra_copy, env, files, profile=profile, phases=phases) if profile or phases else {}
    shutil.rmtree(extra_copy, ignore_errors=True)

    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "files": files,
        "styles": styles,
        "pending": len(pending),
        "pending_events": pending_events,
        "seed_seconds": seeded,
        "prepare_seconds": prepared,
        "a_listing": a,
        "b_old": b,
        "b_extrapolated": b_extrapolated,
        "b_runs": b_runs,
        "b_measured_files": int(old_files),
        "b_measured_seconds": old_seconds,
        "b_counts": counts,
        "c_first_sync": c.seconds,
        "c_events": c_events,
        "c_peak_rss_mb": c.peak_rss_mb,
        "c_stdout": c.stdout.splitlines()[0] if c.stdout else "",
        "d_resync": d.seconds,
        "c_runs": c_runs,
        "d_runs": d_runs,
        "d_warm": d_warm,
        "d_warm_events": d_warm_events,
        "d_events": d_events,
        "d_peak_rss_mb": d.peak_rss_mb,
        "process_start": start_only.seconds,
        "process_start_rss_mb": start_only.peak_rss_mb,
        "append_raw": append_seconds,
        "append_encoded": append_encoded,
        "extra_runs": extra,
    }


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,20000,100000", help="numbers of LoRA files, comma-separated")
    parser.add_argument("--styles", type=int, default=200, help="styles the files are spread over")
    parser.add_argument(
        "--old-budget",
        type=float,
        default=60.0,
        help="seconds the old algorithm may run per size; beyond, it is extrapolated from whole styles",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 1000,5000")
    parser.add_argument("--keep", action="store_true", help="keep the working folders (printed)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run c and d under pyinstrument (reports in bench/results/)",
    )
    parser.add_argument(
        "--phases",
        default="",
        help="sizes (comma-separated) at which c and d also run with phase timers (bench.phases) on copies",
    )
    args = parser.parse_args(argv)
    sizes = [1000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]

    # d warm runs loraledger in this process: it reads boto3's usual sources, as the CLI does
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS)
    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-sync-"))
    measured: list[dict[str, Any]] = []
    with S3Host() as host:
        for files in sizes:
            print(f"sync: {files} files over {args.styles} styles ...", flush=True)
            measured.append(
                bench_size(
                    host,
                    files,
                    args.styles,
                    args.old_budget,
                    root,
                    keep=args.keep,
                    profile=args.profile,
                    phases=str(files) in args.phases.split(","),
                )
            )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"working folders kept in {root}")

    report = Report(
        name="sync",
        title="S3 sync (seconds; ratios are the targets' terms)",
        columns=[
            "files",
            "a listing",
            "b old",
            "c first",
            "d re-sync",
            "d warm",
            "append",
            "c events",
            "d events",
            "d/a",
            "d warm/a",
            "b/(c-a)",
            "c/(a+append)",
            "c RSS MB",
            "d RSS MB",
        ],
        parameters={
            "sizes": sizes,
            "styles": args.styles,
            "old_budget_seconds": args.old_budget,
            "old_json_library": JSON_LIBRARY,
            "append_batch": APPEND_BATCH,
            "prefix": S3_PREFIX,
        },
    )
    for m in measured:
        beyond = m["c_first_sync"] - m["a_listing"]
        m["ratio_d_a"] = m["d_resync"] / m["a_listing"]
        m["ratio_dwarm_a"] = m["d_warm"] / m["a_listing"]
        m["ratio_b_beyond"] = m["b_old"] / beyond if beyond > 0 else float("inf")
        m["ratio_c_raw"] = m["c_first_sync"] / (m["a_listing"] + m["append_raw"])
        report.rows.append(
            [
                m["files"],
                m["a_listing"],
                f"{m['b_old']:.1f}{'*' if m['b_extrapolated'] else ''}",
                m["c_first_sync"],
                m["d_resync"],
                m["d_warm"],
                m["append_raw"],
                m["c_events"],
                m["d_events"],
                m["ratio_d_a"],
                m["ratio_dwarm_a"],
                m["ratio_b_beyond"],
                m["ratio_c_raw"],
                m["c_peak_rss_mb"],
                m["d_peak_rss_mb"],
            ]
        )
        if m["files"] >= 20_000:
            report.targets.append(
                Target(
                    f"re-sync {m['files']:,} (CLI, process start included): d <= 1.1 x a, 0 events",
                    "d/a <= 1.10, 0 events",
                    f"d/a = {m['ratio_d_a']:.2f}, {m['d_events']} events "
                    f"(running service: d warm/a = {m['ratio_dwarm_a']:.2f})",
                    m["ratio_d_a"] <= 1.1 and m["d_events"] == 0,
                )
            )
    with_phases = [m for m in measured if m["extra_runs"]]
    if with_phases:
        labels: list[str] = []
        for m in with_phases:
            for run in m["extra_runs"].values():
                labels.extend(label for label in run["phases"] if label not in labels)
        columns = ["phase (s, inclusive; calls)"]
        for m in with_phases:
            columns += [f"{m['files']:,} {label}" for label in m["extra_runs"]]
        rows: list[list[Any]] = []
        for label in labels:
            row: list[Any] = [label]
            for m in with_phases:
                for run in m["extra_runs"].values():
                    phase = run["phases"].get(label)
                    row.append(None if phase is None else f"{phase['seconds']:.2f} ({phase['calls']:,})")
            rows.append(row)
        rows.append(
            ["wall (bench clock)"]
            + [f"{run['wall']:.2f}" for m in with_phases for run in m["extra_runs"].values()]
        )
        report.extra_tables.append(
            ("Where c and d spend their time (bench.phases, separate runs on copies)", columns, rows)
        )
    at_20k = next((m for m in measured if m["files"] == 20_000), None)
    if at_20k is not None:
        report.targets.append(
            Target(
                f"first sync 20,000 files over {args.styles} styles: (c - a) <= b / 20",
                "b/(c-a) >= 20",
                f"b/(c-a) = {at_20k['ratio_b_beyond']:.1f} (c - a = "
                f"{at_20k['c_first_sync'] - at_20k['a_listing']:.2f} s, b = {at_20k['b_old']:.1f} s)",
                at_20k["ratio_b_beyond"] >= 20,
            )
        )
    largest = measured[-1]
    report.targets.append(
        Target(
            f"first sync {largest['files']:,}: c <= 1.3 x (a + append)",
            "c/(a+append) <= 1.30",
            f"c/(a+append) = {largest['ratio_c_raw']:.2f}",
            largest["ratio_c_raw"] <= 1.3,
        )
    )
    report.notes = [
        "a: raw boto3 paginator in the bench process (moto runs in a process of its own); "
        "c and d: `loraledger sync` as a child process, process start included (best of two runs on "
        "copies up to 20k files); d warm: "
        "Service.sync() in a process whose projection had caught up and whose S3 client existed, as a "
        "running server does POST /sync/s3; "
        f"`loraledger --help` alone takes {measured[0]['process_start']:.2f} s.",
        "b: the old per-file algorithm on a's listing, from the same start files (best of two runs up "
        "to 20k files: its small-file writes vary a lot on this disk); * = extrapolated "
        "linearly from whole styles run within --old-budget (styles are equal in size). "
        f"JSON: {JSON_LIBRARY}.",
        "append: recorder.insert_events of c's own events (same bytes) into an empty SQLite store, "
        f"{APPEND_BATCH} per call.",
        "RSS: peak resident memory of the loraledger process (VmHWM polled from /proc while it runs).",
    ]
    report.data = {"sizes": measured}
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
