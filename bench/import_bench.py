"""Import benchmark: legacy `training_versions.json` files into an empty SQLite store.

F files (one per style, in `<style>/training_versions.json` folders) of E/F entries each, shaped
like tests/fixtures/legacy/style_1_ink_intensity.json's first entry (a completed version with a
RunPod job id, parameters and a loraUrl), one entry per version.

  import  `loraledger import FOLDER` as a child process (process start, reading and planning every
          file, events, and writing every style's file included); events/s over its whole time
  append  the store's raw batched append (`recorder.insert_events`) of the very events the import
          recorded, copied into an empty store of the same kind, 1,000 per call; events/s

Target (the issue): the import's events/s >= 0.5 x the raw append's.

`python -m bench.import_bench [--entries 50000] [--files 1000] [--quick]`
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import REPO, Report, Target, clean_env, cli_command, run_measured
from bench.sync_bench import notification_head, raw_append

FIXTURE = REPO / "tests/fixtures/legacy/style_1_ink_intensity.json"
EVENTS_LINE = re.compile(r"(?:recorded|would record) (\d+) events")


def legacy_entry(template: dict[str, Any], style_id: int, number: int) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(json.dumps(template))
    entry["id"] = f"{uuid.uuid5(uuid.NAMESPACE_URL, f'bench-import/{style_id}/V{number}')}-e1"
    entry["name"] = f"V{number}"
    entry["loraUrl"] = entry["loraUrl"].replace("style_1_vV8", f"style_{style_id}_vV{number}")
    return entry


def write_legacy_tree(root: Path, entries: int, files: int) -> None:
    template = json.loads(FIXTURE.read_text())["versions"][0]
    per_file = entries // files
    for style_id in range(1, files + 1):
        folder = root / str(style_id)
        folder.mkdir(parents=True)
        versions = [legacy_entry(template, style_id, n) for n in range(per_file, 0, -1)]
        (folder / "training_versions.json").write_text(json.dumps({"versions": versions}, indent=2))


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=50_000, help="legacy entries in all")
    parser.add_argument("--files", type=int, default=1_000, help="files (styles) they are spread over")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 entries over 100 files")
    args = parser.parse_args(argv)
    if args.quick:
        args.entries, args.files = 5_000, 100
    root = Path(tempfile.mkdtemp(prefix="loraledger-bench-import-"))
    try:
        tree = root / "legacy"
        write_legacy_tree(tree, args.entries, args.files)
        database_url = f"sqlite:///{root / 'ledger.db'}"
        env = clean_env(LORALEDGER_DATABASE_URL=database_url, LORALEDGER_OUTPUT_DIR=str(root / "styles"))
        run = run_measured(cli_command("import", str(tree)), env=env, cwd=root)
        if run.returncode != 0:
            raise RuntimeError(f"loraledger import failed: {run.stderr[-2000:]}")
        events = sum(int(n) for n in EVENTS_LINE.findall(run.stdout))
        assert events == notification_head(database_url), "the import's events are the whole log"
        append_s, encoded_s, copied = raw_append(
            database_url, 0, f"sqlite:///{root / 'append.db'}", f"sqlite:///{root / 'encoded.db'}"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import_rate = events / run.seconds
    append_rate = copied / append_s
    report = Report(
        name="import",
        title="Import of legacy files (`loraledger import`, SQLite)",
        columns=[
            "entries",
            "files",
            "events",
            "import s",
            "import events/s",
            "append s",
            "append events/s",
            "encode+append events/s",
            "import/append",
            "RSS MB",
        ],
        parameters={"entries": args.entries, "files": args.files, "append_batch": 1000},
    )
    report.rows.append(
        [
            args.entries,
            args.files,
            events,
            run.seconds,
            import_rate,
            append_s,
            append_rate,
            copied / encoded_s,
            import_rate / append_rate,
            run.peak_rss_mb,
        ]
    )
    report.targets.append(
        Target(
            f"import of {args.entries:,} legacy entries over {args.files:,} files >= 0.5 x raw append",
            "import events/s >= 0.5 x append events/s",
            f"{import_rate:,.0f}/s vs {append_rate:,.0f}/s ({import_rate / append_rate:.2f} x)",
            import_rate >= 0.5 * append_rate,
        )
    )
    report.notes = [
        "import: `loraledger import` as a child process, process start and the files' writing included.",
        "append: recorder.insert_events of the import's own events (same bytes) into an empty SQLite "
        "store, 1,000 per call; encode+append: the same with the mapper's encoding in the timed part.",
    ]
    report.data = {
        "import_seconds": run.seconds,
        "events": events,
        "append_seconds": append_s,
        "encoded_append_seconds": encoded_s,
        "started": time.time(),
    }
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
