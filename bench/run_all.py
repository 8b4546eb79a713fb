"""All three benchmarks in one run, then one summary: every target, MET or MISSED.

`python -m bench.run_all [--quick]` (about 15 minutes on a 2-core machine; `--quick` about 2).
Writes bench/results/{sync,webhooks,rebuild,summary}.json.
"""

from __future__ import annotations

import argparse
import json
import time

from bench import rebuild_bench, sync_bench, webhook_bench
from bench.common import RESULTS, Report, Target, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run of every benchmark")
    parser.add_argument(
        "--skip",
        default="",
        help="benchmarks to leave out (sync, webhooks, rebuild); the summary then takes their latest results",
    )
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    skip = set(args.skip.split(","))
    start = time.perf_counter()
    reports: list[Report] = []
    if "sync" not in skip:
        reports.append(sync_bench.main([*quick, "--phases", "20000"]))
        reports[-1].print()
        reports[-1].write()
    if "webhooks" not in skip:
        reports.append(webhook_bench.main(quick))
        reports[-1].print()
        reports[-1].write()
    if "rebuild" not in skip:
        reports.append(rebuild_bench.main(quick))
        reports[-1].print()
        reports[-1].write()
    elapsed = time.perf_counter() - start

    summary = Report(
        name="summary", title="All targets", columns=["benchmark", "target", "measured", "verdict"]
    )
    for name in ("sync", "webhooks", "rebuild"):  # this run's, or the latest written by an earlier run
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        document = json.loads(path.read_text())
        for t in document["targets"]:
            target = Target(t["name"], t["limit"], t["measured"], t["met"], t.get("note", ""))
            summary.rows.append([name, target.name, target.measured, target.verdict])
            summary.targets.append(target)
        summary.data.setdefault("measured_on", {})[name] = document["machine"]["date"]
    summary.parameters = {"quick": args.quick, "seconds": round(elapsed)}
    summary.print()
    path = summary.write()
    met = sum(t.met for t in summary.targets)
    print(f"{met} of {len(summary.targets)} targets met in {elapsed / 60:.1f} min; written: {path}")
    print(json.dumps(machine()))


if __name__ == "__main__":
    main()
