"""Every benchmark in one run, then one summary: every target, MET or MISSED.

`python -m bench.run_all [--quick] [--skip NAME,...]` runs, in this order:

  cli       `loraledger --help` / `--version`, 7 runs each (median)
  sync      1,000, 20,000 and 100,000 files over 200 styles (a, b, c, d, d warm, append), phases at 20,000
  import    50,000 legacy entries over 1,000 files
  webhooks  SQLite 1 process, PostgreSQL 1 and 4 processes; 1, 8, 32 clients; freshness at 32
  history   GET of a version's history of 1,000 events, 200 requests
  rebuild   100,000 and 1,000,000 events over 1,000 styles, history and catalogue shapes
  pages     the version page of 200 events and the list of 1,000 subjects, over HTTP and in process

(about 25 minutes on a 2-core machine; `--quick` runs each at a smoke size in a few minutes, and its
verdicts are not the targets'). Writes bench/results/<name>.json and summary.json. A MISSED target is
printed with what bounds it (the profile in BENCHMARKS.md, "What bounds each missed target").
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from bench import (
    cli_bench,
    history_bench,
    import_bench,
    pages_bench,
    rebuild_bench,
    sync_bench,
    webhook_bench,
)
from bench.common import RESULTS, Report, Target, machine

BENCHES: dict[str, Callable[[list[str]], Report]] = {
    "cli": cli_bench.main,
    "sync": lambda quick: sync_bench.main([*quick, "--phases", "20000"]),
    "import": import_bench.main,
    "webhooks": webhook_bench.main,
    "history": history_bench.main,
    "rebuild": rebuild_bench.main,
    "pages": pages_bench.main,
}

# What bounds a target when it is missed, from the profiles in BENCHMARKS.md (keyed by the start of
# the target's name).
BOUNDS = {
    "first sync 20,000": "process start (~0.3 s of imports) + encoding and appending ~20k events + "
    "one read per existing version (10k per-aggregate SELECTs) + 200 files fsync'd: each is a floor of "
    "an event-sourced sync run as a new process; see BENCHMARKS.md, first sync and re-sync",
    "first sync 100,000": "moto's listing dominates a; beyond it: per-version reads and event encoding",
    "re-sync": "process start + one StyleIndex read (all its events decoded) per style; see BENCHMARKS.md",
    "import of": "per entry a job-index lookup and three events to encode; then the fold, render and "
    "1,000 files with four fsyncs each; see BENCHMARKS.md, import",
    "webhooks, SQLite, 1 process": "one GIL-bound process: ASGI stack + two cached reads (deep copies) + "
    "commit + the writer thread's file writes; see BENCHMARKS.md, webhooks",
    "webhooks, SQLite, 32 concurrent, first: server CPU": "FastAPI/Starlette/uvicorn per request, the "
    "command's reads and save; see BENCHMARKS.md, webhooks",
    "freshness": "the writer's turn writes every touched style with four fsyncs each (8 at a time); "
    "under a burst a turn spans many styles; see BENCHMARKS.md, webhooks and freshness",
    "webhooks, PostgreSQL": "2 cores shared by 4 workers, PostgreSQL and the client; each worker folds "
    "and writes every style; see BENCHMARKS.md, webhooks",
    "history of": "decoding 1,000 events, then FastAPI's response-model validation of the answer; see "
    "BENCHMARKS.md, history",
    "rebuild of": "decoding every event with eventsourcing's mapper alone halves the raw read rate; see "
    "BENCHMARKS.md, rebuild",
    "rebuild memory": "the fold keeps a TrainingVersion aggregate per version; see BENCHMARKS.md, rebuild",
}


def bound_of(target: Target) -> str:
    return next((why for start, why in BOUNDS.items() if target.name.startswith(start)), "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run of every benchmark")
    parser.add_argument(
        "--skip",
        default="",
        help=f"benchmarks to leave out ({', '.join(BENCHES)}); the summary then takes their latest results",
    )
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    skip = set(args.skip.split(","))
    start = time.perf_counter()
    for name, run in BENCHES.items():
        if name in skip:
            continue
        print(f"=== {name}", flush=True)
        report = run(quick)
        report.print()
        report.write()
    elapsed = time.perf_counter() - start

    summary = Report(
        name="summary",
        title="All targets",
        columns=["benchmark", "target", "measured", "verdict", "bound by"],
    )
    for name in BENCHES:  # this run's, or the latest written by an earlier run
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        document = json.loads(path.read_text())
        for t in document["targets"]:
            target = Target(t["name"], t["limit"], t["measured"], t["met"], t.get("note", ""))
            target.note = "" if target.met else bound_of(target)
            summary.rows.append([name, target.name, target.measured, target.verdict, target.note])
            summary.targets.append(target)
        summary.data.setdefault("measured_on", {})[name] = document["machine"]["date"]
    summary.parameters = {"quick": args.quick, "seconds": round(elapsed), "skipped": sorted(skip - {""})}
    summary.print()
    path = summary.write()
    met = sum(t.met for t in summary.targets)
    print(f"{met} of {len(summary.targets)} targets met in {elapsed / 60:.1f} min; written: {path}")
    print(json.dumps(machine()))


if __name__ == "__main__":
    main()
