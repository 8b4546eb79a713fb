"""Faults from outside: S3 answering 500/503/SlowDown for a while, RunPod timing out, and a reader
that reads a projection file while it is rewritten thousands of times.

(The database going away is in test_database_outage.py; kill -9 in test_kill.py.)
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from loraledger.adapters.files import ProjectionFileWriter
from tests.reliability.helpers import event_count, figures, wait_for
from tests.support.s3_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, FaultyEndpoint, S3Server, _Fault
from tests.support.server import S3_PREFIX, ServerFactory

# --------------------------------------------------------------------------- S3


class LaterFaults(FaultyEndpoint):
    """The fault proxy, able to let the first requests through and fail the ones after."""

    def __init__(self, upstream: S3Server) -> None:
        super().__init__(upstream)
        self.pass_first = 0

    def fail_after(self, passes: int, n: int, status: int, code: str) -> None:
        with self._lock:
            self.pass_first = passes
        self.fail_next(n, status=status, code=code)

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            if self.pass_first > 0:
                self.pass_first -= 1
                self.requests_seen += 1
                return None
        return super()._next_fault()


@pytest.fixture
def s3_proxy(s3_server: S3Server) -> Iterator[LaterFaults]:
    proxy = LaterFaults(s3_server)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


S3_STYLES = 5
S3_VERSIONS = 500  # 2,500 objects: three ListObjectsV2 pages
S3_ATTEMPTS = 3


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalError"), (503, "SlowDown"), (503, "ServiceUnavailable")]
)
def test_s3_errors_for_a_while_are_retried_and_then_fail_clearly_recording_nothing(
    make_server: ServerFactory, s3_proxy: LaterFaults, status: int, code: str
) -> None:
    server = make_server(
        extra_env={
            "LORALEDGER_S3_ENDPOINT_URL": s3_proxy.endpoint_url,
            "LORALEDGER_S3_MAX_ATTEMPTS": str(S3_ATTEMPTS),
            "LORALEDGER_LORA_URL_BASE": "https://bucket.s3-accelerate.amazonaws.com/",
        }
    )
    keys = [
        f"{S3_PREFIX}style_{style}_vV{n}.safetensors"
        for style in range(1, S3_STYLES + 1)
        for n in range(1, S3_VERSIONS + 1)
    ]
    server.bucket.put_many(keys)

    # 1. The first page lists; every try of the second page fails: a clear 502, nothing recorded.
    s3_proxy.fail_after(1, 1000, status, code)
    began = time.monotonic()
    failed = server.client.post("/sync/s3", timeout=120)
    failed_after = time.monotonic() - began
    served = s3_proxy.faults_served
    s3_proxy.heal()
    assert failed.status_code == 502, failed.text
    detail = failed.json()["detail"]
    assert server.bucket.name in detail and code in detail and f"HTTP {status}" in detail, detail
    assert served == S3_ATTEMPTS, f"{served} tries of the failing page, expected {S3_ATTEMPTS}"
    for secret in (FAKE_ACCESS_KEY, FAKE_SECRET_KEY):
        assert secret not in failed.text
    assert event_count(server.database_url) == 0  # nothing half-done
    assert server.document_bytes(1) is None and not server.file(1).exists()

    # 2. Faults that stop before the tries run out: retried, the whole bucket recorded once.
    s3_proxy.fail_after(1, S3_ATTEMPTS - 1, status, code)
    before = s3_proxy.faults_served
    report = server.sync()
    retried = s3_proxy.faults_served - before
    assert retried == S3_ATTEMPTS - 1
    assert (report["scanned"], report["created"], report["unchanged"]) == (len(keys), len(keys), 0)
    assert [len(server.document(style)["versions"]) for style in range(1, S3_STYLES + 1)] == [S3_VERSIONS] * 5

    # 3. A third sync sees nothing new and records nothing.
    count = event_count(server.database_url)
    again = server.sync()
    assert (again["created"], again["unchanged"]) == (0, len(keys))
    assert event_count(server.database_url) == count
    figures(
        f"S3 {status} {code}",
        objects=len(keys),
        failing_page_tries=served,
        failed_sync=f"502 after {failed_after:.1f} s, 0 events",
        transient_faults_retried=retried,
        resync_events=0,
    )


# --------------------------------------------------------------------------- RunPod


def test_runpod_timing_out_is_a_502_in_bounded_time_the_attempt_failed_never_pending(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        extra_env={
            "LORALEDGER_RUNPOD_TIMEOUT": "0.5",
            "LORALEDGER_RUNPOD_ATTEMPTS": "2",
            "LORALEDGER_RECONCILE_GRACE": "0s",
        }
    )
    stub = server.stub

    # /run never answers in time: every try times out.
    stub.delay_next(2, 3.0)
    began = time.monotonic()
    answer = server.start_training(1, "V9", parameters={"learning_rate": 0.0003})
    start_seconds = time.monotonic() - began
    assert answer.status_code == 502, answer.text
    assert start_seconds < 10, start_seconds
    entry = server.entry(1, "V9")
    assert entry["status"] == "failed" and "error" in entry, entry
    assert "time" in entry["error"].lower(), entry["error"]
    runs_logged = sum(1 for r in stub.request_log if r.path.endswith("/run"))

    # RunPod is back: the same version is tried again and goes through.
    job = server.started_job(1, "V9", parameters={"learning_rate": 0.0003})
    assert server.entry(1, "V9")["status"] == "pending"

    # /status times out during reconcile: reported, nothing changes, no 5xx.
    stub.complete(job, deliver=False)
    stub.delay_next(2, 3.0)
    reconcile = server.client.post("/reconcile", params={"older_than": "0s"})
    assert reconcile.status_code == 200, reconcile.text
    assert reconcile.json()["errors"], reconcile.json()
    assert server.entry(1, "V9")["status"] == "pending"

    # Later it answers: reconcile applies the completion once.
    time.sleep(3.2)  # let the delayed stub requests finish before asking again
    applied = server.client.post("/reconcile", params={"older_than": "0s"})
    assert applied.status_code == 200 and applied.json()["applied"] == 1, applied.text
    assert server.entry(1, "V9")["status"] == "completed"
    types = Counter(event["type"] for event in server.history(1, "V9"))
    assert types["TrainingCompleted"] == 1 and types["TrainingFailed"] == 1, types

    orphans = [j for j in stub.jobs if j != job]  # jobs the timed-out tries did start after all
    figures(
        "RunPod timing out",
        start_answer=f"502 after {start_seconds:.1f} s",
        run_tries=runs_logged,
        state_after="failed, not pending",
        reconcile_during_timeouts=f"200 with {len(reconcile.json()['errors'])} error(s), nothing changed",
        jobs_started_by_timed_out_tries=len(orphans),
    )


def test_a_job_started_by_a_timed_out_run_does_not_take_over_a_completed_version(
    make_server: ServerFactory,
) -> None:
    """RunPod's /run has no idempotency key: a try that timed out may have started a job anyway.
    When that job's webhook arrives after the version was completed by its own job, it must not
    replace the version's job id or completion time (a completed LoRA is never overwritten)."""
    server = make_server(extra_env={"LORALEDGER_RUNPOD_TIMEOUT": "0.5", "LORALEDGER_RUNPOD_ATTEMPTS": "2"})
    stub = server.stub
    stub.delay_next(2, 1.5)
    assert server.start_training(1, "V9").status_code == 502
    job = server.started_job(1, "V9")
    assert stub.complete(job).status_codes == [200]
    completed = server.entry(1, "V9")
    assert wait_for(lambda: len(stub.jobs) == 3, 5), "the timed-out tries started no job"
    orphans = [j for j in stub.jobs if j != job]
    answers = [stub.complete(orphan).status_codes for orphan in orphans]
    assert all(code is not None and code < 500 for codes in answers for code in codes), answers
    after = server.entry(1, "V9")
    types = Counter(event["type"] for event in server.history(1, "V9"))
    assert (after["id"], after["completedAt"]) == (job, completed["completedAt"]), after
    assert types["TrainingCompleted"] == 1, types


# --------------------------------------------------------------------------- a reader during rewrites

REWRITES_PER_WRITER = 1000
WRITERS = 2


def _text_for(position: int) -> str:
    """A document whose size varies with the position, and that says which position it is."""
    versions = [
        {"id": f"job-{position}-{i}", "name": f"V{i}", "status": "completed", "pad": "x" * (position % 97)}
        for i in range(1 + position % 40, 0, -1)
    ]
    return json.dumps({"position": position, "versions": versions}, indent=2)


def _writer(output_dir: str, offset: int, count: int, log_id: str) -> int:
    """Write positions offset, offset+WRITERS, ...; returns how many writes replaced the file."""
    writer = ProjectionFileWriter(Path(output_dir), state_dir=Path(output_dir).parent / "state")
    changed = 0
    for i in range(count):
        position = offset + WRITERS * i + 1
        changed += writer.write(1, _text_for(position), f"{log_id}:{position}").changed
    return changed


def test_a_reader_never_sees_invalid_json_or_an_older_state_while_the_file_is_rewritten(
    tmp_path: Path,
) -> None:
    output_dir = tmp_path / "styles"
    path = ProjectionFileWriter(output_dir).path_for(1)
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        results = [
            pool.apply_async(_writer, (str(output_dir), offset, REWRITES_PER_WRITER, "log0123456789abc"))
            for offset in range(WRITERS)
        ]
        reads = invalid = backwards = 0
        last = 0
        while not all(result.ready() for result in results):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            reads += 1
            try:
                position = json.loads(data)["position"]
            except ValueError:
                invalid += 1
                continue
            if position < last:
                backwards += 1
            last = max(last, position)
            time.sleep(0.0002)  # leave the writers some CPU on a small machine
        changed = sum(result.get(timeout=120) for result in results)
    final = WRITERS * REWRITES_PER_WRITER
    assert invalid == 0, f"{invalid} of {reads} reads were not valid JSON"
    assert backwards == 0, f"{backwards} reads saw an older state than one read before"
    assert json.loads(path.read_bytes())["position"] == final
    assert path.read_text() == _text_for(final)
    leftovers = [p.name for p in path.parent.iterdir() if p.name != "training_versions.json"]
    assert leftovers == [], leftovers  # no temp file, and the records live in the state folder
    assert reads > 500, f"only {reads} reads: the reader did not overlap the writers"
    assert changed > 500, f"only {changed} rewrites"
    figures(
        "reader during rewrites",
        writer_processes=WRITERS,
        writes_offered=final,
        rewrites=changed,
        reads=reads,
        invalid_json=0,
        older_state_seen=0,
    )
