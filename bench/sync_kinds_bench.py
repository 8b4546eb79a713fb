"""Sync of a bucket holding both subject kinds (CONTRACT §8): styles under the styles' prefix and
actors under the actors' prefix, against a bucket of styles only with the same number of files.

For each N: bucket `styles` holds N style files over 200 styles; bucket `both` holds N/2 style files
over 100 styles and N/2 actor files over actors 1-100 (the same numbers: style 6 and actor 6 are
both there). Each runs `loraledger sync` as a child process twice on a fresh SQLite store: c (first
sync, every version created, every file written) and d (nothing new). The figures compare the two:
a sync of two prefixes should cost about what one of the same size costs.

`python -m bench.sync_kinds_bench [--sizes 2000,20000] [--quick]`
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.common import FAKE_AWS, S3_PREFIX, Report, S3Host, Target, clean_env, cli_command, run_measured

ACTOR_PREFIX = "actor_maker_user/custom-actors/models/"
SUBJECTS = 200
EVENTS_LINE = re.compile(r"(\d+) events recorded")
SCANNED_LINE = re.compile(r"scanned (\d+)")


def run_sync(work: Path, env: dict[str, str]) -> dict[str, Any]:
    """`loraledger sync`, then again with nothing new: seconds, events, files written."""
    found: dict[str, Any] = {}
    for label in ("c", "d"):
        ran = run_measured(cli_command("sync"), env=env, cwd=work)
        if ran.returncode != 0:
            raise RuntimeError(f"loraledger sync failed ({ran.returncode}): {ran.stderr[-2000:]}")
        events, scanned = EVENTS_LINE.search(ran.stdout), SCANNED_LINE.search(ran.stdout)
        assert events is not None and scanned is not None, ran.stdout[:500]
        found[label] = {
            "seconds": ran.seconds,
            "events": int(events.group(1)),
            "scanned": int(scanned.group(1)),
            "rss_mb": ran.peak_rss_mb,
        }
    found["files_written"] = sum(1 for _ in (work / "out").rglob("training_versions.json"))
    return found


def bench_bucket(host: S3Host, files: int, kinds: str, root: Path) -> dict[str, Any]:
    work = root / f"{kinds}-{files}"
    work.mkdir()
    bucket = f"bench-kinds-{files}-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        **FAKE_AWS,
        LORALEDGER_DATABASE_URL=f"sqlite:///{work / 'ledger.db'}",
        LORALEDGER_OUTPUT_DIR=str(work / "out"),
        LORALEDGER_S3_BUCKET=bucket,
        LORALEDGER_S3_ENDPOINT_URL=host.endpoint_url,
        LORALEDGER_S3_PREFIX=S3_PREFIX,
    )
    if kinds == "styles":
        host.seed(bucket, S3_PREFIX, files, SUBJECTS)
    else:
        host.seed(bucket, S3_PREFIX, files // 2, SUBJECTS // 2)
        host.seed(bucket, ACTOR_PREFIX, files - files // 2, SUBJECTS // 2, kind="actor", create=False)
        env["LORALEDGER_S3_ACTOR_PREFIX"] = ACTOR_PREFIX
    measured = run_sync(work, env)
    shutil.rmtree(work, ignore_errors=True)
    return {"files": files, "kinds": kinds, **measured}


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2000,20000", help="numbers of LoRA files, comma-separated")
    parser.add_argument("--quick", action="store_true", help="smoke run: size 2000")
    args = parser.parse_args(argv)
    sizes = [2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-kinds-"))
    measured: list[dict[str, Any]] = []
    with S3Host() as host:
        for files in sizes:
            for kinds in ("styles", "both"):
                print(f"sync: {files} files, {kinds} ...", flush=True)
                measured.append(bench_bucket(host, files, kinds, root))
    shutil.rmtree(root, ignore_errors=True)

    report = Report(
        name="sync_kinds",
        title="S3 sync of styles only vs styles and actors (seconds)",
        columns=[
            "files",
            "bucket",
            "scanned",
            "c first",
            "d re-sync",
            "c events",
            "d events",
            "files written",
        ],
        parameters={"sizes": sizes, "subjects": SUBJECTS, "prefix": S3_PREFIX, "actor_prefix": ACTOR_PREFIX},
    )
    for m in measured:
        report.rows.append(
            [
                m["files"],
                m["kinds"],
                m["c"]["scanned"],
                m["c"]["seconds"],
                m["d"]["seconds"],
                m["c"]["events"],
                m["d"]["events"],
                m["files_written"],
            ]
        )
    for files in sizes:
        styles, both = (
            next(m for m in measured if (m["files"], m["kinds"]) == (files, k)) for k in ("styles", "both")
        )
        ratio = both["c"]["seconds"] / styles["c"]["seconds"]
        report.targets.append(
            Target(
                f"first sync of {files:,} files over both prefixes, against one prefix",
                "c both / c styles <= 1.25, every file scanned",
                f"{ratio:.2f}, scanned {both['c']['scanned']:,}",
                ratio <= 1.25 and both["c"]["scanned"] == files,
            )
        )
        report.targets.append(
            Target(
                f"re-sync of {files:,} files over both prefixes records nothing",
                "0 events",
                f"{both['d']['events']} events, {both['d']['seconds']:.2f} s "
                f"(styles only: {styles['d']['seconds']:.2f} s)",
                both["d"]["events"] == 0,
            )
        )
    report.data["measured"] = measured
    report.print()
    report.write()
    return report


if __name__ == "__main__":
    main()
