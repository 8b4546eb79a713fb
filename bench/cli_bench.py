"""CLI start benchmark: `loraledger --help` and `loraledger --version` as child processes.

Each is run R times (after one warm-up run, so the files are in the page cache); the median wall time
counts. Target (the issue): <= 0.25 s each.

`python -m bench.cli_bench [--runs 7]`
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.common import Report, Target, clean_env, cli_command, run_measured


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median counts)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 runs")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    report = Report(
        name="cli",
        title="CLI start (child process, wall time)",
        columns=["command", "runs", "median s", "min s", "max s", "RSS MB"],
        parameters={"runs": runs},
    )
    with tempfile.TemporaryDirectory(prefix="loraledger-bench-cli-") as folder:
        env = clean_env()
        for flag in ("--help", "--version"):
            run_measured(cli_command(flag), env=env, cwd=Path(folder))
            measured = [run_measured(cli_command(flag), env=env, cwd=Path(folder)) for _ in range(runs)]
            seconds = [m.seconds for m in measured]
            median = statistics.median(seconds)
            report.rows.append(
                [f"loraledger {flag}", runs, median, min(seconds), max(seconds), measured[0].peak_rss_mb]
            )
            report.targets.append(
                Target(f"`loraledger {flag}`", "<= 0.25 s (median)", f"{median:.3f} s", median <= 0.25)
            )
    report.notes = ["The interpreter's own start is included (`python -c pass` takes about 0.02 s here)."]
    return report


if __name__ == "__main__":
    result = main()
    result.print()
    print(f"written: {result.write()}")
