"""Hostile input against the real server: nesting 100k levels deep, style ids, names and layouts
that try to leave the output folder, very long names, text that is not UTF-8, odd S3 keys, and
fuzzed webhook bodies. Expected: a 4xx (or a 2xx that records something sane), never a 5xx, and
nothing written outside the output folder.

Property-based tests of the pure rules live with the rules: tests/unit/test_naming.py (the naming
parser: any text is either a valid name that round-trips or a rejection with a reason) and
tests/unit/test_matching.py (the matching rules over generated styles and files). schemathesis
over the whole API is in test_schemathesis.py.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.helpers import figures, logged_exceptions, wait_for
from tests.support.server import HTTP_TIMEOUT, S3_PREFIX, LedgerServer, ServerFactory

LEVELS = 100_000


def _send(
    server: LedgerServer, method: str, path: str, raw: bytes = b"", **headers: str | bytes
) -> int | str:
    """One request on a fresh connection (a server drops a connection after an unhandled error)."""
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        try:
            fields = {"content-type": "application/json", **headers}
            encoded = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in fields.items()]
            response = client.request(method, path, content=raw, headers=encoded)
        except httpx.HTTPError as error:
            return repr(error)
    return response.status_code


def _bad(answers: dict[str, int | str]) -> dict[str, int | str]:
    """Cases that got a 5xx or no answer at all."""
    return {
        case: status for case, status in answers.items() if not (isinstance(status, int) and status < 500)
    }


def _files_outside(root: Path, output_dir: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix == ".json"
        and not path.resolve().is_relative_to(output_dir.resolve())
    ]


def _nest(levels: int, opener: str = "[", closer: str = "]", inner: str = "1") -> str:
    return opener * levels + inner + closer * levels


# --------------------------------------------------------------------------- nesting


def test_bodies_nested_100k_levels_deep_are_refused_with_a_4xx(server: LedgerServer) -> None:
    job = server.started_job(1, "V9")
    body = dict(server.stub.complete(job, deliver=False))
    webhook = server.webhook_url().removeprefix(server.base_url)
    deep_objects = _nest(LEVELS, '{"a":', "}")

    def inside(document: dict[str, Any], where: str, nested: str) -> bytes:
        return json.dumps({**document, where: "__X__"}).replace('"__X__"', nested).encode()

    cases = {
        "webhook: objects": ("POST", webhook, deep_objects.encode()),
        "webhook: arrays": ("POST", webhook, _nest(LEVELS).encode()),
        "webhook: output": ("POST", webhook, inside(body, "output", _nest(LEVELS))),
        "webhook: input": ("POST", webhook, inside(body, "input", deep_objects)),
        "start: parameters": (
            "POST",
            "/styles/1/trainings",
            inside({"version_name": "V10"}, "parameters", deep_objects),
        ),
        "start: input": (
            "POST",
            "/styles/1/trainings",
            inside({"version_name": "V11"}, "input", deep_objects),
        ),
        "patch": ("PATCH", "/styles/1/versions/V9", inside({}, "note", _nest(LEVELS))),
        "sync": ("POST", "/sync/s3", inside({}, "style_id", _nest(LEVELS))),
    }
    answers = {case: _send(server, method, path, raw) for case, (method, path, raw) in cases.items()}
    assert _bad(answers) == {}, answers
    assert all(isinstance(status, int) and 400 <= status < 500 for status in answers.values()), answers
    assert server.healthy()
    assert server.stub.complete(job).status_codes == [200]  # the genuine webhook still applies
    assert server.entry(1, "V9")["status"] == "completed"
    figures(
        "100k nested levels",
        bodies=len(answers),
        largest_body_bytes=max(len(raw) for _, _, raw in cases.values()),
        answers=Counter(answers.values()),
        server_errors=0,
    )


DEPTHS = (300, 600, 900)


def test_json_nested_hundreds_of_levels_in_user_fields_is_a_4xx_and_never_breaks_a_style(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V9")
    answers: dict[str, int | str] = {}
    for depth in DEPTHS:
        nested = _nest(depth)
        for where in ("parameters", "fields", "input"):
            start = json.dumps({"version_name": f"V{depth}{len(answers)}", where: {"x": "__X__"}})
            answers[f"start {where} {depth}"] = _send(
                server, "POST", "/styles/1/trainings", start.replace('"__X__"', nested).encode()
            )
        patch = json.dumps({"note": "__X__"}).replace('"__X__"', nested).encode()
        answers[f"patch {depth}"] = _send(server, "PATCH", "/styles/1/versions/V9", patch)
        answers[f"read after {depth}"] = _send(server, "GET", "/styles/1/training_versions.json")
        answers[f"history after {depth}"] = _send(server, "GET", "/styles/1/versions/V9/history")
    server.tracebacks_reported = True  # they are the finding; the assertion below reports them
    assert _bad(answers) == {}, (answers, sorted(set(logged_exceptions(server.stderr_text()))))


# --------------------------------------------------------------------------- leaving the output folder


def test_style_ids_and_names_that_try_to_leave_the_output_folder_are_refused(
    server: LedgerServer, tmp_path: Path
) -> None:
    server.started_job(1, "V9")
    style_paths = [
        "..",
        "%2e%2e",
        "..%2F..%2Ftmp",
        "1%2F..%2F..%2Fx",
        "1/../../x",
        "%2F",
        "0",
        "01",
        "-1",
        "1e3",
        "%20%31",
        "%EF%BC%91",  # a full-width 1
        "%D9%A1",  # an Arabic-Indic 1
        "1%00",
        "9" * 10,
        "9" * 10_000,
    ]
    names = ["..", "V1/../..", "V1%2F..", "%2e%2e", "V%EF%BC%91", "V1%00", "V" + "9" * 11, "V" + "9" * 5000]
    answers: dict[str, int | str] = {}
    for style in style_paths:
        answers[f"start {style[:20]}"] = _send(
            server, "POST", f"/styles/{style}/trainings", b'{"version_name": "V1"}'
        )
        answers[f"read {style[:20]}"] = _send(server, "GET", f"/styles/{style}/training_versions.json")
        answers[f"patch {style[:20]}"] = _send(server, "PATCH", f"/styles/{style}/versions/V9", b'{"x": 1}')
    for name in names:
        answers[f"history {name[:20]}"] = _send(server, "GET", f"/styles/1/versions/{name}/history")
        answers[f"patch {name[:20]}"] = _send(server, "PATCH", f"/styles/1/versions/{name}", b'{"x": 1}')
    for name in ["../../x", "V1/../x", "V\uff11", "V\u0663", "v" + "1" * 12, "style_1_vV9", "V0", "V01"]:
        raw = json.dumps({"version_name": name}).encode()
        answers[f"start name {name[:20]}"] = _send(server, "POST", "/styles/1/trainings", raw)
    assert _bad(answers) == {}, answers
    accepted = {case: status for case, status in answers.items() if status in (200, 201)}
    assert accepted == {}, accepted
    assert _files_outside(tmp_path, server.output_dir) == []
    assert [p.parent.name for p in server.output_dir.rglob("training_versions.json")] == ["1"]
    figures(
        "style ids and names leaving the folder",
        requests=len(answers),
        answers=Counter(answers.values()),
        accepted=0,
        files_outside=0,
        server_errors=0,
    )


HOSTILE_LAYOUTS = [
    "../{style_id}/training_versions.json",
    "/tmp/{style_id}/training_versions.json",
    "{style_id}/../../x.json",
    "{style_id}/..",
    "..",
    "./{style_id}/training_versions.json",
    "{style_id}_*/../../x.json",
    "{style_id}*/x.json",
    "{style_id}/..\\..\\x.json",
    "{other}/training_versions.json",
    "",
]


def test_layouts_that_leave_the_output_folder_are_refused_and_write_nothing(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server()
    server.started_job(1, "V9")
    server.stop()
    refused = {}
    runs = [(layout, ("rebuild",)) for layout in HOSTILE_LAYOUTS] + [
        (layout, command)
        for layout in HOSTILE_LAYOUTS[:3]
        for command in (("sync",), ("import", str(tmp_path / "nothing")))
    ]
    for layout, command in runs:
        result = server.cli(*command, env={"LORALEDGER_OUTPUT_LAYOUT": layout})
        assert result.returncode == 2, (layout, command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (layout, result.stderr)
        assert result.stderr.startswith("error: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        refused[(layout, command[0])] = result.stderr.strip()
    # The server does not start on such a layout either.
    bad = make_server(
        extra_env={"LORALEDGER_OUTPUT_LAYOUT": "../{style_id}/training_versions.json"}, start=False
    )
    with pytest.raises(RuntimeError, match="exited"):
        bad.start()
    bad.tracebacks_reported = True  # uvicorn reports a failed startup with a traceback
    assert "may not contain a '..' segment" in bad.stderr_text()
    assert _files_outside(tmp_path, server.output_dir) == []
    figures(
        "hostile layouts",
        layouts=len(HOSTILE_LAYOUTS),
        cli_runs=len(refused),
        refused_with_one_line=len(refused),
        serve_refused_to_start=1,
        files_outside=0,
    )


def test_a_style_folder_that_is_a_symlink_out_of_the_output_folder_is_never_written_through(
    server: LedgerServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    server.output_dir.mkdir(parents=True, exist_ok=True)
    (server.output_dir / "5").symlink_to(outside, target_is_directory=True)
    (server.output_dir / "7_evil").symlink_to(outside, target_is_directory=True)
    answers = {
        "start 5": _send(server, "POST", "/styles/5/trainings", b'{"version_name": "V1"}'),
        "start 7": _send(server, "POST", "/styles/7/trainings", b'{"version_name": "V1"}'),
    }
    rebuild = server.cli("rebuild")
    picked = server.cli("rebuild", env={"LORALEDGER_OUTPUT_LAYOUT": "{style_id}_*/training_versions.json"})
    assert list(outside.iterdir()) == []
    assert _files_outside(tmp_path, server.output_dir) == []
    for result in (rebuild, picked):
        assert result.returncode == 1 and "not inside the output directory" in result.stderr, result.stderr
    assert _bad(answers) == {}, answers
    server.tracebacks_reported = True  # the writer logs the refused style
    figures("symlinked style folder", requests=len(answers), answers=answers, files_outside=0)


def test_a_symlinked_style_folder_does_not_stop_other_styles_files(
    server: LedgerServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    server.output_dir.mkdir(parents=True, exist_ok=True)
    (server.output_dir / "5").symlink_to(outside, target_is_directory=True)
    server.bucket.put_many(f"{S3_PREFIX}style_{style}_vV1.safetensors" for style in (3, 5, 9))
    status = _send(server, "POST", "/sync/s3")
    server.tracebacks_reported = True
    written = wait_for(lambda: server.file(3).exists() and server.file(9).exists(), 3)
    assert list(outside.iterdir()) == []
    assert (status, written) == (200, True), (status, written, logged_exceptions(server.stderr_text()))


# --------------------------------------------------------------------------- long names, non-UTF-8


def test_very_long_names_and_text_that_is_not_utf8_are_4xx(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    webhook = server.webhook_url().removeprefix(server.base_url)
    cases: dict[str, tuple[str, str, bytes]] = {
        "name 10k": (
            "POST",
            "/styles/1/trainings",
            json.dumps({"version_name": "V" + "9" * 10_000}).encode(),
        ),
        "description 20k": (
            "POST",
            "/styles/1/trainings",
            json.dumps({"version_name": "V3", "description": "d" * 20_000}).encode(),
        ),
        "path name 10k": ("GET", "/styles/1/versions/V" + "9" * 10_000 + "/history", b""),
        "path style 10k": ("GET", "/styles/" + "1" * 10_000 + "/training_versions.json", b""),
        "webhook id 10k": ("POST", webhook, json.dumps({"id": "a" * 10_000, "status": "COMPLETED"}).encode()),
        "webhook 2 MB": (
            "POST",
            webhook,
            json.dumps({"id": "a-e1", "status": "COMPLETED", "output": "x" * 2_000_000}).encode(),
        ),
        "webhook token 8k": ("POST", "/webhooks/runpod?token=" + "t" * 8_000, b"{}"),
        "reconcile 1k": ("POST", "/reconcile?older_than=" + "1" * 1_000 + "m", b""),
        "patch key 200k": ("PATCH", "/styles/1/versions/V9", json.dumps({"k" * 200_000: 1}).encode()),
        "path %FF": ("GET", "/styles/%FF/training_versions.json", b""),
        "name %FF%FE": ("GET", "/styles/1/versions/%FF%FE/history", b""),
        "name overlong /": ("GET", "/styles/1/versions/V9%C0%AF/history", b""),
        "body \\xff value": (
            "POST",
            "/styles/1/trainings",
            b'{"version_name": "V5", "description": "\xff\xfe"}',
        ),
        "body \\xff key": ("PATCH", "/styles/1/versions/V9", b'{"\xff\xfe": 1}'),
        "body latin-1": ("PATCH", "/styles/1/versions/V9", '{"café": 1}'.encode("latin-1")),
        "body UTF-16": ("PATCH", "/styles/1/versions/V9", '{"note": 1}'.encode("utf-16")),
        "webhook \\xff id": ("POST", webhook, b'{"id": "\xff", "status": "COMPLETED"}'),
        "webhook \\xff key": (
            "POST",
            webhook,
            b'{"id": "a-e1", "status": "COMPLETED", "output": {"\xff": 1}}',
        ),
        "webhook lone surrogate": (
            "POST",
            webhook,
            b'{"id": "a-e1", "status": "COMPLETED", "error": "\\ud800"}',
        ),
        "webhook token %FF": ("POST", "/webhooks/runpod?token=%FF%FE", b"{}"),
        "sync \\xff": ("POST", "/sync/s3", b'{"style_id": "\xff"}'),
        "reconcile %FF": ("POST", "/reconcile?older_than=%FF", b""),
    }
    answers = {case: _send(server, method, path, raw) for case, (method, path, raw) in cases.items()}
    answers["bearer latin-1"] = _send(server, "POST", "/sync/s3", b"{}", authorization=b"Bearer \xe9\xff")
    assert _bad(answers) == {}, answers
    unexpected = {
        case: status
        for case, status in answers.items()
        if not (isinstance(status, int) and 400 <= status < 500)
        # JSON may come as UTF-16 (Python's json reads it; RFC 8259 8.1); a long key is only data
        and case not in ("patch key 200k", "bearer latin-1", "body UTF-16")
    }
    assert unexpected == {}, unexpected
    assert answers["webhook 2 MB"] == 413
    assert server.healthy() and server.entry(1, "V9")["status"] == "pending"
    figures(
        "long names and non-UTF-8 text",
        requests=len(answers),
        answers=Counter(answers.values()),
        server_errors=0,
    )


def test_reconcile_durations_too_large_are_a_422_and_a_one_line_error(server: LedgerServer) -> None:
    server.started_job(1, "V9")
    durations = ("999999999d", "1000000000d", "99999999999999999999d", "100000000000000s")
    answers = {text: _send(server, "POST", f"/reconcile?older_than={text}") for text in durations}
    results = {text: server.cli("reconcile", "--older-than", text) for text in durations}
    server.tracebacks_reported = True
    assert _bad(answers) == {}, answers
    tracebacks = {text: r.stderr[-300:] for text, r in results.items() if "Traceback" in r.stderr}
    assert tracebacks == {}, tracebacks


# --------------------------------------------------------------------------- S3 keys


class _ListingServer:
    """A bare S3 endpoint answering ListObjectsV2 with a fixed, hostile page of keys."""

    def __init__(self, bucket: str, encoded_keys: list[str], raw_xml: bytes | None = None) -> None:
        contents = "".join(
            f"<Contents><Key>{key}</Key><LastModified>2025-10-13T19:36:17.000Z</LastModified>"
            f'<ETag>"{n:032x}"</ETag><Size>100</Size><StorageClass>STANDARD</StorageClass></Contents>'
            for n, key in enumerate(encoded_keys, start=1)
        )
        body = (
            raw_xml
            or (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{bucket}</Name><Prefix>{S3_PREFIX}</Prefix><KeyCount>{len(encoded_keys)}</KeyCount>"
                f"<MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
                f"{contents}</ListBucketResult>"
            ).encode()
        )

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.endpoint_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def listing_servers() -> Iterator[list[_ListingServer]]:
    servers: list[_ListingServer] = []
    yield servers
    for each in servers:
        each.close()


def test_s3_keys_that_are_not_utf8_or_not_names_are_skipped_with_a_reason(
    make_server: ServerFactory, listing_servers: list[_ListingServer]
) -> None:
    encoded = {
        "invalid UTF-8 byte": f"{S3_PREFIX}style_1_vV1%FF.safetensors",
        "overlong slash": f"{S3_PREFIX}%C0%AFstyle_1_vV2.safetensors",
        "NUL": f"{S3_PREFIX}style_1_vV3%00.safetensors",
        "right-to-left override": f"{S3_PREFIX}style_1_vV4%E2%80%AE.safetensors",
        "full-width digit": f"{S3_PREFIX}style_%EF%BC%91_vV5.safetensors",
        "very long": f"{S3_PREFIX}style_1_vV{'9' * 900}.safetensors",
        "query in name": f"{S3_PREFIX}style_1_vV6.safetensors%3Fx%3D1",
        "valid": f"{S3_PREFIX}style_1_vV7.safetensors",
    }
    listing = _ListingServer("hostile", list(encoded.values()))
    listing_servers.append(listing)
    server = make_server(
        extra_env={"LORALEDGER_S3_ENDPOINT_URL": listing.endpoint_url, "LORALEDGER_S3_BUCKET": "hostile"}
    )
    response = server.client.post("/sync/s3")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["scanned"] == len(encoded) and report["created"] == 1, report
    assert len(report["skipped"]) == len(encoded) - 1 and all(s["reason"] for s in report["skipped"]), report
    assert [v["name"] for v in server.document(1)["versions"]] == ["V7"]

    # A listing that is not even well-formed XML (raw bytes that are not UTF-8) is a clean 502.
    broken = _ListingServer(
        "broken", [], raw_xml=b"<?xml version='1.0'?><ListBucketResult><Key>\xff\xfe</Key>"
    )
    listing_servers.append(broken)
    other = make_server(
        extra_env={
            "LORALEDGER_S3_ENDPOINT_URL": broken.endpoint_url,
            "LORALEDGER_S3_BUCKET": "broken",
            "LORALEDGER_S3_MAX_ATTEMPTS": "1",
        }
    )
    failed = other.client.post("/sync/s3")
    assert failed.status_code in (200, 502), failed.text
    figures(
        "hostile S3 keys",
        keys=len(encoded),
        skipped_with_reason=len(report["skipped"]),
        created=report["created"],
        malformed_listing=failed.status_code,
        server_errors=0,
    )


def test_s3_keys_with_dot_segments_give_no_url_that_resolves_outside_the_prefix(server: LedgerServer) -> None:
    keys = [
        f"{S3_PREFIX}../../elsewhere/style_2_vV1.safetensors",
        f"{S3_PREFIX}./style_2_vV2.safetensors",
        f"{S3_PREFIX}a#/style_2_vV3.safetensors",
        f"{S3_PREFIX}a?b=/style_2_vV4.safetensors",
    ]
    server.bucket.put_many(keys)
    report = server.sync()
    assert report["scanned"] == len(keys)
    entries = server.document(2)["versions"] if report["created"] else []
    resolving_elsewhere = [
        entry["loraUrl"]
        for entry in entries
        if {".", ".."} & set(urlsplit(entry["loraUrl"]).path.split("/"))
        or "#" in entry["loraUrl"]
        or "?" in entry["loraUrl"]
    ]
    assert resolving_elsewhere == []


# --------------------------------------------------------------------------- fuzzed webhooks

JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
MODEL_NAMES = st.sampled_from(
    ["style_1_vV9", "style_1_vV10", "style_01_vV1", "style_1_v9", "actor_1_V1", ""]
) | st.text(max_size=30)
WEBHOOK_BODIES = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["job-e1", "job-e2", "job"]) | st.text(min_size=1, max_size=30),
        "status": st.sampled_from(
            ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT", "IN_PROGRESS", "IN_QUEUE"]
        )
        | st.text(max_size=12),
    },
    optional={
        "input": st.fixed_dictionaries(
            {"training_config": st.fixed_dictionaries({"model_name": MODEL_NAMES})}
        )
        | JSON_VALUES,
        "output": st.fixed_dictionaries(
            {},
            optional={
                "status": st.sampled_from(["success", "failed", "error"]) | JSON_VALUES,
                "loraUrl": st.sampled_from(
                    ["https://b.s3-accelerate.amazonaws.com/p/style_1_vV9.safetensors"]
                )
                | JSON_VALUES,
                "loraName": MODEL_NAMES | JSON_VALUES,
                "model_info": JSON_VALUES,
                "error": JSON_VALUES,
            },
        )
        | JSON_VALUES,
        "error": JSON_VALUES,
        "delayTime": JSON_VALUES,
        "executionTime": JSON_VALUES,
    },
)


@pytest.mark.slow
def test_fuzzed_webhook_bodies_never_get_a_5xx(server: LedgerServer) -> None:
    """RunPod-shaped bodies with anything in them (hypothesis); the webhook route has no OpenAPI
    body schema, so schemathesis cannot reach this far."""
    job = server.started_job(1, "V9")
    server.started_job(1, "V10")
    answers: Counter[int | str] = Counter()
    url = server.webhook_url()

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(WEBHOOK_BODIES, st.booleans())
    def deliver(body: dict[str, Any], real_job: bool) -> None:
        if real_job:
            body = {**body, "id": job}
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            try:
                status: int | str = client.post(
                    url, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
                ).status_code
            except httpx.HTTPError as error:
                status = repr(error)
        answers[status] += 1
        assert isinstance(status, int) and status < 500, (status, body)

    deliver()
    assert server.healthy()
    versions = server.document(1)["versions"]
    assert sorted(v["name"] for v in versions) == ["V10", "V9"]  # nothing invented
    figures(
        "fuzzed webhook bodies (hypothesis)",
        bodies=sum(answers.values()),
        answers=dict(answers),
        server_errors=0,
    )
