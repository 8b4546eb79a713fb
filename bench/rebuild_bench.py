"""Rebuild and replay benchmark: regenerate every style's file from the whole event log.

Stores of 100k and 1M events over 1,000 styles are generated through the Ledger's own commands
(start, webhook completion, webhook repeats, annotations; saves batched many aggregates per
transaction, see common.BulkLedgerStore), in two shapes:

  history    a fixed catalogue (10 versions per style) whose history grows: more events per version
  catalogue  a fixed history per version (10 events) and more versions

(at 100k the two shapes are the same store). Each measurement runs in a child process of its own,
so its peak RSS is its own:

  raw read   `recorder.select_notifications` over the whole log, 2,000 per call (the runner's batch)
  + decode   the same, each notification turned into a domain event by the mapper
  rebuild    `Service.rebuild()` (ProjectionWriter.rebuild: the fold from zero; every style's file written)
  replay     `Service.replay(until=now)` into an empty folder
  idle       a Service on an empty store: the memory floor of the process

Targets (the issue): a rebuild of 1M events over 1k styles at >= 0.5 x the raw log read rate; memory
<= 1 KB per version and flat in the number of events.

`python -m bench.rebuild_bench [--sizes 100000,1000000] [--styles 1000] [--shapes history,catalogue]
[--quick]`
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Report, Target, bulk_ledger, clean_env, job_id_for, peak_rss_mb, run_measured
from loraledger.adapters.store import store_env
from loraledger.domain.observations import JobReport

EVENTS_PER_VERSION = 10  # the catalogue shape's history per version (and both shapes' at the smallest size)
READ_BATCH = 2_000
CHUNK_STYLES = 20


# --------------------------------------------------------------------------- generation


def completion(style_id: int, number: int) -> JobReport:
    model = f"style_{style_id}_vV{number}"
    return JobReport(
        job_id=job_id_for(style_id, number),
        status="COMPLETED",
        output_status="success",
        model_name=model,
        lora_url=f"https://storyboard-user-files.s3-accelerate.amazonaws.com/{model}.safetensors",
        summary={"delayTime": 24921, "executionTime": 3173383, "message": "LoRA training completed"},
    )


def generate(database_url: str, styles: int, versions_per_style: int, events: int) -> dict[str, Any]:
    """Fill an empty store with about `events` events over `styles` styles; returns what was made.

    Per version: a start (request + RunPod job: 3 version events, 2 job-index events, 1 style-index
    event), a webhook completion, then webhook repeats and annotations in turn until the version has
    its share of the events.
    """
    ledger, store = bulk_ledger(store_env(database_url))
    base = 7  # events per version from start + completion, index events included
    extra = max(0, round(events / (styles * versions_per_style)) - base)
    parameters = {"learning_rate": 0.0003, "max_train_steps": 3600, "network_dim": 16}
    start = time.perf_counter()
    written = 0
    for first in range(1, styles + 1, CHUNK_STYLES):
        for style_id in range(first, min(styles, first + CHUNK_STYLES - 1) + 1):
            for number in range(1, versions_per_style + 1):
                request = ledger.start.request(
                    style_id, f"V{number}", parameters=parameters, description="benchmark", fields={}
                )
                ledger.start.record_start(request, job_id_for(style_id, number))
                report = completion(style_id, number)
                ledger.reports.apply(report)
                for k in range(extra):
                    if k % 3 == 2:
                        ledger.annotations.annotate(style_id, f"V{number}", {"isGood": k % 2 == 0}, [])
                    else:
                        ledger.reports.apply(report)
        written += store.flush()
        store.forget()
    seconds = time.perf_counter() - start
    head = store.recorder.max_notification_id()
    ledger.close()
    return {
        "events": head,
        "versions": styles * versions_per_style,
        "events_per_version": base + extra,
        "generate_seconds": seconds,
        "written": written,
    }


# --------------------------------------------------------------------------- child measurements


def child(kind: str, database_url: str, out_dir: str) -> dict[str, Any]:
    from loraledger.api.bootstrap import open_service
    from loraledger.api.settings import Settings

    result: dict[str, Any] = {"kind": kind}
    if kind in ("raw", "decode"):
        from loraledger.application.store import LedgerStore

        ledger = LedgerStore(store_env(database_url))
        start = time.perf_counter()
        position, count = 0, 0
        while True:
            batch = ledger.recorder.select_notifications(position + 1, READ_BATCH)
            if not batch:
                break
            position = batch[-1].id
            count += len(batch)
            if kind == "decode":
                for notification in batch:
                    ledger.mapper.to_domain_event(notification)
        result.update(seconds=time.perf_counter() - start, events=count)
        ledger.close()
    else:
        service = open_service(Settings(database_url=database_url, output_dir=out_dir))
        start = time.perf_counter()
        written: Any = []
        if kind == "rebuild":
            written = service.rebuild()  # the styles written (a list, or a CatchUp in later versions)
        elif kind == "replay":
            # beside the live folder, never inside it (replay refuses that)
            written = service.replay(datetime.now(UTC), Path(f"{out_dir}-replayed"))
        styles = written if isinstance(written, list) else written.styles_written
        result.update(
            seconds=time.perf_counter() - start,
            events=int(service.ledger.store.recorder.max_notification_id() or 0),
            styles=len(styles),
        )
        service.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def measure(kind: str, database_url: str, work: Path) -> dict[str, Any]:
    out_dir = work / f"out-{kind}"
    command = [sys.executable, "-m", "bench.rebuild_bench", "--child", kind, database_url, str(out_dir)]
    ran = run_measured(command, env=clean_env(), cwd=work)
    if ran.returncode != 0:
        raise RuntimeError(f"{kind} child failed: {ran.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    result["process_seconds"] = ran.seconds
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="event counts, comma-separated")
    parser.add_argument("--styles", type=int, default=1000)
    parser.add_argument("--shapes", default="history,catalogue", help="history and/or catalogue")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k and 60k events over 100 styles")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        raise SystemExit(0)
    if args.quick:
        args.sizes, args.styles = "20000,60000", 100
    sizes = [int(s) for s in args.sizes.split(",")]
    shapes = [s for s in args.shapes.split(",") if s]

    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-rebuild-"))
    stores: list[dict[str, Any]] = []
    try:
        idle_url = f"sqlite:///{root / 'idle.db'}"
        idle = measure("idle", idle_url, root)
        smallest = sizes[0]
        for shape in shapes:
            for events in sizes:
                if events == smallest and shape != shapes[0]:
                    same = next(s for s in stores if s["events_target"] == smallest)
                    stores.append(same | {"shape": shape})  # the same store in both shapes
                    continue
                # history: the smallest size's catalogue throughout; catalogue: 10 events per version
                catalogue_of = smallest if shape == "history" else events
                per_style = max(1, round(catalogue_of / args.styles / EVENTS_PER_VERSION))
                work = root / f"{shape}-{events}"
                work.mkdir()
                url = f"sqlite:///{work / 'ledger.db'}"
                print(
                    f"rebuild: generating {events:,} events ({shape}, {per_style} versions/style) ...",
                    flush=True,
                )
                made = generate(url, args.styles, per_style, events)
                entry: dict[str, Any] = {"shape": shape, "events_target": events, **made}
                for kind in ("raw", "decode", "rebuild", "replay"):
                    entry[kind] = measure(kind, url, work)
                    print(f"  {kind}: {entry[kind]}", flush=True)
                stores.append(entry)
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = Report(
        name="rebuild",
        title="Rebuild and replay from the whole log (SQLite; events/s; peak RSS of the process)",
        columns=[
            "shape",
            "events",
            "versions",
            "raw read /s",
            "+decode /s",
            "rebuild /s",
            "rebuild s",
            "rebuild/raw",
            "replay /s",
            "RSS rebuild MB",
            "RSS replay MB",
            "RSS raw MB",
        ],
        parameters={
            "sizes": sizes,
            "styles": args.styles,
            "shapes": shapes,
            "read_batch": READ_BATCH,
            "idle_rss_mb": idle["peak_rss_mb"],
        },
    )
    for s in stores:
        rate = {k: s[k]["events"] / s[k]["seconds"] for k in ("raw", "decode", "rebuild", "replay")}
        s["rates"] = rate
        report.rows.append(
            [
                s["shape"],
                s["events"],
                s["versions"],
                rate["raw"],
                rate["decode"],
                rate["rebuild"],
                s["rebuild"]["seconds"],
                f"{rate['rebuild'] / rate['raw']:.1%}",
                rate["replay"],
                s["rebuild"]["peak_rss_mb"],
                s["replay"]["peak_rss_mb"],
                s["raw"]["peak_rss_mb"],
            ]
        )
    for shape in shapes:
        points = sorted((s for s in stores if s["shape"] == shape), key=lambda s: s["events"])
        if len(points) < 2:
            continue
        low, high = points[0], points[-1]
        floor = idle["peak_rss_mb"]
        growth = high["rebuild"]["peak_rss_mb"] / low["rebuild"]["peak_rss_mb"]
        per_version_kb = (
            (high["rebuild"]["peak_rss_mb"] - low["rebuild"]["peak_rss_mb"])
            * 1024
            / (high["versions"] - low["versions"])
            if high["versions"] != low["versions"]
            else None
        )
        measured = (
            f"{low['rebuild']['peak_rss_mb']:.0f} MB at {low['events']:,} -> "
            f"{high['rebuild']['peak_rss_mb']:.0f} MB at {high['events']:,} "
            f"(x{growth:.2f}; floor {floor:.0f} MB)"
        )
        if per_version_kb is not None:
            measured += f"; {per_version_kb:.1f} KB per added version"
        if shape == "history":
            report.targets.append(
                Target(
                    "rebuild memory flat in the number of events (same versions)",
                    f"peak RSS x{high['events'] / low['events']:.0f} events <= x1.25",
                    measured,
                    growth <= 1.25,
                )
            )
        elif per_version_kb is not None:
            report.targets.append(
                Target(
                    "rebuild memory per version (events grow with versions)",
                    "<= 1 KB per added version",
                    measured,
                    per_version_kb <= 1.0,
                )
            )
    largest = max(stores, key=lambda s: (s["events"], s["shape"] == "history"))
    share = largest["rates"]["rebuild"] / largest["rates"]["raw"]
    report.targets.append(
        Target(
            f"rebuild of {largest['events']:,} events over {args.styles:,} styles >= 0.5 x raw log read",
            "rebuild/raw >= 0.50",
            f"{largest['rates']['rebuild']:,.0f}/s vs {largest['rates']['raw']:,.0f}/s ({share:.2f} x)",
            share >= 0.5,
        )
    )
    report.notes = [
        f"idle: a Service on an empty store peaks at {idle['peak_rss_mb']:.0f} MB (imports): the floor.",
        "Events: every notification of the log (TrainingVersion events and the style and job indexes' "
        "events); the runner reads them all and folds the TrainingVersion ones.",
        "rebuild/raw: rebuild rate as a share of the raw notification read rate.",
    ]
    report.data = {"idle": idle, "stores": stores}
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
