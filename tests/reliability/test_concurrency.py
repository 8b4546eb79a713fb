"""Several writers at once: two server processes on one PostgreSQL store (and one SQLite process
with many threads), concurrent starts, repeated webhook deliveries to both processes, two syncs.

Expected, whatever the interleaving: exactly one entry per version, every version in its right
final state, one completion (or failure) per job however often it was delivered, every delivery
recorded, the same bytes from both processes and on disk, and no 5xx.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.reliability.helpers import (
    duplicates,
    figures,
    read_documents,
    run_at_once,
    server_errors,
    wait_for,
)
from tests.support.server import S3_PREFIX, LedgerServer, ServerFactory

STYLES = (1, 2, 3, 4)
STARTED = range(1, 21)  # V1..V20 of each style are started through the API
COMPLETED_BY_WEBHOOK = range(1, 9)  # V1..V8: COMPLETED webhook
FAILED_BY_WEBHOOK = range(9, 13)  # V9..V12: FAILED webhook
COMPLETED_BY_SYNC = range(13, 17)  # V13..V16: only the S3 file
COMPLETED_BY_BOTH = range(17, 21)  # V17..V20: the webhook and the S3 file at the same moment
CREATED_BY_SYNC = range(21, 26)  # V21..V25: never started, only in S3
STARTS_PER_VERSION = 2  # each version is started twice at once (on both processes when there are two)
DELIVERIES = 6  # each webhook body is delivered this often, spread over the processes
ANNOTATED = (1, 9, 13, 17)  # one version of each kind gets fields set while all this goes on
FIELDS_PER_VERSION = 4
WORKERS = 16


def _scenario(servers: list[LedgerServer], label: str, processes: int | None = None) -> None:
    first = servers[0]
    stub, bucket = first.stub, first.bucket

    # 1. Every version is started on every server at once: one 201 per version, the rest 409.
    starts = [
        (style, f"V{n}", servers[i % len(servers)])
        for style in STYLES
        for n in STARTED
        for i in range(STARTS_PER_VERSION)
    ]
    random.Random(1).shuffle(starts)

    def start(style: int, name: str, server: LedgerServer) -> Callable[[httpx.Client], Any]:
        body = {"version_name": name, "parameters": {"n": name}, "fields": {"selectionSetId": style}}
        return lambda c: c.post(f"{server.base_url}/styles/{style}/trainings", json=body).status_code

    began = time.monotonic()
    start_statuses = run_at_once([start(*each) for each in starts], WORKERS)
    assert server_errors(start_statuses) == [], start_statuses
    per_version = Counter(
        (style, name, status) for (style, name, _), status in zip(starts, start_statuses, strict=True)
    )
    for style in STYLES:
        for n in STARTED:
            assert per_version[(style, f"V{n}", 201)] == 1, per_version
            assert per_version[(style, f"V{n}", 409)] == STARTS_PER_VERSION - 1, per_version
    jobs = {job.model_name: job.id for job in stub.jobs.values()}
    assert len(jobs) == len(stub.jobs) == len(STYLES) * len(STARTED), "one RunPod job per version"

    # 2. Webhook bodies for the jobs that end, and the S3 files.
    bodies: dict[str, bytes] = {}
    for style in STYLES:
        for n in [*COMPLETED_BY_WEBHOOK, *COMPLETED_BY_BOTH]:
            job = jobs[f"style_{style}_vV{n}"]
            bodies[job] = json.dumps(dict(stub.complete(job, deliver=False))).encode()
        for n in FAILED_BY_WEBHOOK:
            job = jobs[f"style_{style}_vV{n}"]
            bodies[job] = json.dumps(dict(stub.fail(job, "out of memory", deliver=False))).encode()
    bucket.put_many(
        f"{S3_PREFIX}style_{style}_vV{n}.safetensors"
        for style in STYLES
        for n in [*COMPLETED_BY_SYNC, *COMPLETED_BY_BOTH, *CREATED_BY_SYNC]
    )

    # 3. Every body delivered several times to every server, and one sync per server, all at once.
    def deliver(server: LedgerServer, body: bytes) -> Callable[[httpx.Client], Any]:
        headers = {"content-type": "application/json"}
        return lambda c: c.post(server.webhook_url(), content=body, headers=headers).status_code

    def sync(server: LedgerServer) -> Callable[[httpx.Client], Any]:
        return lambda c: c.post(f"{server.base_url}/sync/s3").status_code

    deliveries = [
        deliver(servers[i % len(servers)], body) for body in bodies.values() for i in range(DELIVERIES)
    ]
    random.Random(2).shuffle(deliveries)
    syncs = [sync(server) for server in servers] * (2 if len(servers) == 1 else 1)

    # Meanwhile, fields the service does not own are set on the same versions, one field per request
    # from every process: a lost update would drop some of them.
    def annotate(server: LedgerServer, style: int, name: str, field: int) -> Callable[[httpx.Client], Any]:
        url = f"{server.base_url}/styles/{style}/versions/{name}"
        return lambda c: c.patch(url, json={f"note{field}": field}).status_code

    annotations = [
        annotate(servers[field % len(servers)], style, f"V{n}", field)
        for style in STYLES
        for n in ANNOTATED
        for field in range(FIELDS_PER_VERSION)
    ]
    mixed = [*deliveries, *annotations]
    random.Random(3).shuffle(mixed)
    tasks = [*syncs, *mixed]
    statuses = run_at_once(tasks, WORKERS)
    elapsed = time.monotonic() - began
    assert server_errors(statuses) == [], Counter(map(str, statuses))
    assert statuses[: len(syncs)] == [200] * len(syncs)
    assert set(statuses[len(syncs) :]) == {200}, Counter(map(str, statuses))

    # 4. The final state, the same from every process and on disk.
    texts = {}
    for style in STYLES:
        answers = {server.document_bytes(style) for server in servers}
        assert len(answers) == 1, f"style {style}: the processes disagree"
        texts[style] = answers.pop()
    for style, text in texts.items():
        assert text is not None
        path = first.file(style)
        assert wait_for(lambda: path.exists() and path.read_bytes() == text, 3.0), f"file of {style}"  # noqa: B023
    documents = read_documents(first.output_dir)
    assert duplicates(documents) == []
    effects = Counter[str]()
    for style in STYLES:
        entries = {entry["name"]: entry for entry in documents[style]}
        expected = [*STARTED, *CREATED_BY_SYNC]
        assert sorted(entries) == sorted(f"V{n}" for n in expected)
        assert [e["name"] for e in documents[style]] == [f"V{n}" for n in sorted(expected, reverse=True)]
        for n in expected:
            name, model = f"V{n}", f"style_{style}_vV{n}"
            entry = entries[name]
            s3_url = f"{first.bucket.server.endpoint_url}/{first.bucket.name}/{S3_PREFIX}{model}.safetensors"
            if n in FAILED_BY_WEBHOOK:
                assert (entry["status"], entry["id"], entry["error"]) == (
                    "failed",
                    jobs[model],
                    "out of memory",
                )
            elif n in CREATED_BY_SYNC:
                assert (entry["status"], entry["id"], entry["loraUrl"]) == ("completed", model, s3_url)
                assert entry["description"] == "Synced from S3"
            else:
                assert (entry["status"], entry["id"]) == ("completed", jobs[model]), entry
                assert entry["parameters"] == {"n": name} and entry["selectionSetId"] == style
                if n in COMPLETED_BY_SYNC:
                    assert entry["loraUrl"] == s3_url
                elif n in COMPLETED_BY_WEBHOOK:
                    assert "s3-accelerate" in entry["loraUrl"] and "completedAt" in entry
                else:  # webhook and sync raced: completed once, the accelerated URL never downgraded
                    assert entry["loraUrl"].endswith(f"/{model}.safetensors") and "completedAt" in entry
            if n in ANNOTATED:
                notes = {f"note{field}": field for field in range(FIELDS_PER_VERSION)}
                assert {k: entry.get(k) for k in notes} == notes, entry
            if n in CREATED_BY_SYNC or n in COMPLETED_BY_SYNC:
                continue
            types = Counter(event["type"] for event in first.history(style, name))
            ended = "TrainingFailed" if n in FAILED_BY_WEBHOOK else "TrainingCompleted"
            assert types[ended] == 1, types
            # every delivery is recorded once: the first as the end, each repeat as a repeat
            recorded = types[ended] + types["WebhookRepeated"] + types["WebhookIgnored"]
            assert recorded == DELIVERIES, types
            effects[ended] += 1
            effects["repeats"] += types["WebhookRepeated"] + types["WebhookIgnored"]
    figures(
        label,
        processes=processes or len(servers),
        versions=len(STYLES) * (len(STARTED) + len(CREATED_BY_SYNC)),
        concurrent_starts=len(starts),
        starts_201=sum(1 for s in start_statuses if s == 201),
        deliveries_sent=len(deliveries),
        completions_recorded=effects["TrainingCompleted"],
        failures_recorded=effects["TrainingFailed"],
        repeats_recorded=effects["repeats"],
        concurrent_syncs=len(syncs),
        concurrent_annotations=len(annotations),
        annotations_kept=len(annotations),
        duplicates=0,
        server_errors=0,
        seconds=f"{elapsed:.1f}",
    )


@pytest.mark.postgres
def test_two_processes_on_postgresql_starts_webhooks_and_syncs_at_once(make_server: ServerFactory) -> None:
    first = make_server(postgres=True)
    second = make_server(twin_of=first)
    _scenario([first, second], "two processes on PostgreSQL")


def test_one_sqlite_process_many_threads_starts_webhooks_and_syncs_at_once(
    make_server: ServerFactory,
) -> None:
    _scenario([make_server()], "one process on SQLite, many threads")


@pytest.mark.postgres
def test_serve_with_three_workers_on_postgresql_starts_webhooks_and_syncs_at_once(
    make_server: ServerFactory,
) -> None:
    """The README's one-command scale-out: uvicorn's workers share one port and one store."""
    server = make_server(postgres=True, serve_options=("--workers", "3"))
    _scenario([server], "serve --workers 3 on PostgreSQL", processes=3)
