"""What every benchmark script shares: the machine's description, timing a child process, tables,
results files, verdicts, the S3 test server in a process of its own, and batched ledger commands.

Nothing here changes loraledger: the scripts drive the installed package from the outside (its CLI,
its HTTP server, its `Service`/`Ledger` classes) and the test-support servers under `tests/support/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from loraledger.application.ledger import Ledger
from loraledger.application.store import LedgerStore

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
S3_PREFIX = "actor_maker_user/custom-styles-models/"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the figures were measured on (they mean little without it)."""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    from importlib.metadata import version

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "eventsourcing": version("eventsourcing"),
        "moto": version("moto"),
        "boto3": version("boto3"),
        "git_commit": (commit + ("+local-changes" if dirty else ""))
        if commit
        else os.environ.get("BENCH_SOURCE", ""),
        # other work on a shared machine shows here: the figures drift with it
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- processes


@dataclass(slots=True)
class Measured:
    """One child process: wall time, its own peak RSS, exit status and output."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(
    command: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = 1800
) -> Measured:
    """Run a command to its end; the peak RSS is that process's own.

    Read as VmHWM from /proc while it runs (every 5 ms), not from getrusage: Linux carries the
    parent's peak over into a child's ru_maxrss across fork and exec, so a child of a large bench
    process would seem at least as large as the bench.
    """
    out_path = cwd / f".bench-out-{uuid.uuid4().hex[:8]}"
    err_path = out_path.with_suffix(".err")
    peak_kb = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=out, stderr=err)
        deadline = start + timeout
        status_path = Path(f"/proc/{process.pid}/status")
        while True:
            with contextlib.suppress(OSError, ValueError):
                peak_kb = max(peak_kb, _hwm_kb(status_path.read_text()))
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, _ = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    return Measured(seconds, peak_kb / 1024, process.returncode, stdout, stderr)


def _hwm_kb(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cli_command(*args: str) -> list[str]:
    """`loraledger ARGS` as the console script runs it, with this interpreter (never through PATH)."""
    return [sys.executable, "-m", "loraledger", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without LORALEDGER_* and AWS profile variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LORALEDGER_")
        and k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
    }
    env.update(FAKE_AWS)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def peak_rss_mb() -> float:
    """This process's own peak RSS so far (VmHWM; see run_measured for why not getrusage)."""
    return _hwm_kb(Path("/proc/self/status").read_text()) / 1024


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- verdicts and tables


@dataclass(slots=True)
class Target:
    """One target of the issue, with what was measured against it."""

    name: str
    limit: str
    measured: str
    met: bool
    note: str = ""

    @property
    def verdict(self) -> str:
        return "MET" if self.met else "MISSED"


@dataclass(slots=True)
class Report:
    """A benchmark's rows, targets and parameters; printed as tables and written as JSON."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    extra_tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)

    def print(self) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(highlight=False, width=160)
        table = Table(title=self.title, title_justify="left")
        for column in self.columns:
            table.add_column(column, justify="left" if column == self.columns[0] else "right")
        for row in self.rows:
            table.add_row(*(fmt(cell) for cell in row))
        console.print(table)
        for title, columns, rows in self.extra_tables:
            extra = Table(title=title, title_justify="left")
            for column in columns:
                extra.add_column(column, justify="left" if column == columns[0] else "right")
            for row in rows:
                extra.add_row(*(fmt(cell) for cell in row))
            console.print(extra)
        if self.targets:
            verdicts = Table(title=f"{self.title}: targets", title_justify="left")
            for column in ("target", "limit", "measured", "verdict"):
                verdicts.add_column(column)
            for target in self.targets:
                colour = "green" if target.met else "red"
                verdicts.add_row(
                    target.name, target.limit, target.measured, f"[{colour}]{target.verdict}[/{colour}]"
                )
            console.print(verdicts)
        for note in self.notes:
            console.print(f"- {note}", markup=False)

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        document = {
            "name": self.name,
            "title": self.title,
            "machine": machine(),
            "parameters": self.parameters,
            "columns": self.columns,
            "rows": self.rows,
            "targets": [asdict(t) | {"verdict": t.verdict} for t in self.targets],
            "notes": self.notes,
            "extra_tables": [{"title": t, "columns": c, "rows": r} for t, c, r in self.extra_tables],
            "data": self.data,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        return path


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank, of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------- the S3 server


class S3Host:
    """The moto S3 test server (tests/support/s3_server.py) in a process of its own.

    A process of its own so that the server's work never shares a GIL with what is measured: the
    raw listing in this process and loraledger in its own process see the same server.
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.s3_host"],
            cwd=REPO,
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.endpoint_url: str = hello["endpoint_url"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the S3 host process ended")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"S3 host: {answer['error']}")
        return answer

    def seed(
        self, bucket: str, prefix: str, files: int, styles: int, *, kind: str = "style", create: bool = True
    ) -> float:
        """Create `bucket` (unless `create` is False) holding `files` LoRA files over `styles`
        subjects of `kind` under `prefix`; returns seconds taken."""
        assert self.process.stdin is not None
        command = {"op": "seed", "bucket": bucket, "prefix": prefix, "files": files, "styles": styles}
        command |= {"kind": kind, "create": create}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return float(self._read()["seconds"])

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.flush()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> S3Host:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def lora_key(prefix: str, style_id: int, number: int, kind: str = "style") -> str:
    if kind == "actor":
        return f"{prefix}actor_{style_id}_V{number}.safetensors"
    return f"{prefix}style_{style_id}_vV{number}.safetensors"


def file_layout(files: int, styles: int) -> Iterator[tuple[int, int]]:
    """(style id, version number) of file i: styles take turns, so each has files/styles files."""
    for i in range(files):
        yield i % styles + 1, i // styles + 1


def job_id_for(style_id: int, number: int) -> str:
    """A RunPod-shaped job id (UUID and `-e1`), the same every run for the same version."""
    return f"{uuid.uuid5(uuid.NAMESPACE_URL, f'bench/{style_id}/V{number}')}-e1"


# --------------------------------------------------------------------------- batched commands


class BulkLedgerStore(LedgerStore):
    """The store under the Ledger's own commands, with their saves gathered and written many at once.

    Each command runs unchanged (`start.request`, `start.record_start`, ...): what it reads comes
    from aggregates already touched in this batch, or from the store; what it saves is kept and
    written by `flush()` in one `save()` of many aggregates (one transaction). The events are the
    ones the commands would have written one by one; only the number of transactions differs. For
    preparing large stores quickly; not for concurrent use. Open it with `bulk_ledger(env)`.
    """

    name = LedgerStore.name  # the store's table names derive from it (PostgreSQL): the same as the service's

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._touched: dict[UUID, Any] = {}
        self._dirty: dict[UUID, Aggregate] = {}

    def find(self, aggregate_id: UUID) -> Any:
        found = self._touched.get(aggregate_id)
        if found is None:
            found = super().find(aggregate_id)
            if found is not None:
                self._touched[aggregate_id] = found
        return found

    def save_all(self, *aggregates: Aggregate | None) -> int:
        pending = [a for a in aggregates if a is not None]
        for aggregate in pending:
            self._touched[aggregate.id] = aggregate
            if aggregate.pending_events:
                self._dirty[aggregate.id] = aggregate
        return sum(len(a.pending_events) for a in pending)

    def flush(self) -> int:
        """Write everything gathered since the last flush in one transaction; returns the event count."""
        dirty = list(self._dirty.values())
        self._dirty.clear()
        count = sum(len(a.pending_events) for a in dirty)
        if count:
            self.save(*dirty)
        return count

    def forget(self) -> None:
        """Drop the aggregates kept between commands (after a flush), to bound memory."""
        assert not self._dirty, "flush() first"
        self._touched.clear()


def bulk_ledger(env: Mapping[str, str]) -> tuple[Ledger, BulkLedgerStore]:
    """The Ledger's use cases over a BulkLedgerStore (flush and forget it between batches)."""
    ledger = Ledger.open(env, store_class=BulkLedgerStore)
    assert isinstance(ledger.store, BulkLedgerStore)
    return ledger, ledger.store


def create_pending(ledger: Ledger, versions: Sequence[tuple[int, int]], *, flush_every: int = 5000) -> int:
    """Start (request + RunPod job id) each (style, number) through the Ledger's commands, in bulk.

    Returns the number of events written. Flushes every `flush_every` versions (about six events
    each). On PostgreSQL, inserts of ~30,000 and of ~3,000 events each once never returned (psycopg's
    pure-Python libpq wrapper in pipeline mode: the server waited in ClientRead, the client in
    Pipeline.sync; cf. psycopg/psycopg#685), so callers on PostgreSQL flush in small batches.
    """
    store = ledger.store
    assert isinstance(store, BulkLedgerStore)
    parameters = {"learning_rate": 0.0003, "max_train_steps": 3600, "network_dim": 16}
    written = 0
    for done, (style_id, number) in enumerate(versions, start=1):
        request = ledger.start.request(
            style_id,
            f"V{number}",
            parameters=parameters,
            description="benchmark training",
            fields={"selectionSetId": 1},
        )
        ledger.start.record_start(request, job_id_for(style_id, number))
        if done % flush_every == 0:
            written += store.flush()
    written += store.flush()
    store.forget()
    return written


# --------------------------------------------------------------------------- PostgreSQL


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except Exception:
        return False


def fresh_postgres_url(tag: str) -> str:
    return f"{POSTGRES_URL}?schema=bench_{tag}_{uuid.uuid4().hex[:8]}"


def drop_postgres_schema(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    schema = database_url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
