"""Run a `loraledger` command with wall-clock timers around its main phases (no profiler overhead).

`python -m bench.phases OUT.json sync` runs `loraledger sync` as the console script would and writes
how long the process spent importing, listing S3, reading aggregates, saving, folding the projection
and writing files, with call counts. The timers wrap library and loraledger functions from outside;
nothing in loraledger is changed. Nested timers are not subtracted: each figure is inclusive.
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

STARTED = time.perf_counter()
totals: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)


def timed(owner: Any, attribute: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
            calls[label] += 1

    setattr(owner, attribute, wrapper)


def timed_iterator(owner: Any, attribute: str, label: str) -> None:
    """Time a generator function's work across all the items it yields (not the consumer's)."""
    original: Callable[..., Any] = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        iterator = original(*args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                totals[label] += time.perf_counter() - start
                calls[label] += 1
                return
            totals[label] += time.perf_counter() - start
            yield item

    setattr(owner, attribute, wrapper)


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    from eventsourcing.application import Application, Repository
    from eventsourcing.persistence import Mapper

    import loraledger.adapters.files
    import loraledger.adapters.s3_sync
    import loraledger.projections.runner
    import loraledger.projections.training_versions
    import loraledger.projections.writer
    from loraledger.api.cli import main as cli_main
    from loraledger.application.sync import SyncCommands

    totals["imports"] = time.perf_counter() - start
    timed_iterator(loraledger.adapters.s3_sync, "list_objects", "S3 listing (loraledger's adapter)")
    # the label names the command as it was first measured, so old and new figures compare
    timed(SyncCommands, "observe", "Ledger.observe_lora_files (listing included)")
    timed(Repository, "get", "Repository.get (aggregate reads)")
    timed(Application, "save", "Application.save (encode + insert)")
    timed(Mapper, "to_stored_event", "Mapper.to_stored_event (encode, inside save)")
    # the label names the step as it was first measured, so old and new figures compare
    timed(loraledger.projections.writer.ProjectionWriter, "catch_up", "ProjectionRunner.catch_up (whole)")
    timed_iterator(
        loraledger.projections.runner, "read_batches", "read_batches (select + decode, inside catch_up)"
    )
    timed(
        loraledger.projections.training_versions.StyleDocuments,
        "apply",
        "StyleDocuments.apply (fold, inside catch_up)",
    )
    timed(loraledger.projections.training_versions.StyleDocuments, "render", "StyleDocuments.render")
    timed(loraledger.adapters.files.ProjectionFileWriter, "write", "ProjectionFileWriter.write (files)")

    def report() -> None:
        totals["process (after interpreter start)"] = time.perf_counter() - STARTED
        order = [
            "imports",
            "S3 listing (loraledger's adapter)",
            "Ledger.observe_lora_files (listing included)",
            "Repository.get (aggregate reads)",
            "Application.save (encode + insert)",
            "Mapper.to_stored_event (encode, inside save)",
            "ProjectionRunner.catch_up (whole)",
            "read_batches (select + decode, inside catch_up)",
            "StyleDocuments.apply (fold, inside catch_up)",
            "StyleDocuments.render",
            "ProjectionFileWriter.write (files)",
            "process (after interpreter start)",
        ]
        labels = sorted(totals, key=lambda label: order.index(label) if label in order else len(order))
        document = {label: {"seconds": totals[label], "calls": calls.get(label, 0)} for label in labels}
        with open(out, "w") as f:
            json.dump(document, f, indent=2)

    atexit.register(report)
    sys.argv = ["loraledger", *args]
    cli_main()


if __name__ == "__main__":
    main()
