"""A real S3-compatible HTTP server for tests (moto's ThreadedMotoServer), as a pytest plugin.

Fixtures:

* `s3_server` (session): moto listening on 127.0.0.1:<free port>; an `S3Server` with
  `endpoint_url`, `access_key`, `secret_key`, `region` and `client()`. For the session it also puts
  fake credentials in `os.environ` (restored at the end), because the code under test reads boto3's
  usual sources.
* `s3_bucket` (function): a fresh, uniquely named bucket on that server, as an `S3Bucket` with
  `put()`, `put_many()` (tens of thousands of keys per second, written straight into moto's
  in-process backend) and `delete()`. Nothing is deleted afterwards; names never repeat.
* `s3_faulty_endpoint` (function): a small HTTP proxy in front of the server whose
  `fail_next(n, status=503, code="SlowDown")` makes it answer the next `n` requests with an S3
  error instead of forwarding them.

Caveat: moto keeps its state in process-wide backends. A test that enters `moto.mock_aws()` resets
them, which empties this server too (buckets made by `s3_bucket` inside such a test vanish).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

import boto3
import pytest
from botocore.config import Config
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

# AWS's documentation example keys: credential-shaped, so leak checks are meaningful, never real.
FAKE_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FAKE_REGION = "us-east-1"

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
    "AWS_DEFAULT_REGION": FAKE_REGION,
}
# A profile or token in the developer's environment would override or taint the fake keys
# (an explicit AWS_PROFILE makes botocore skip the environment credentials altogether).
_HIDDEN_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def _client(endpoint_url: str, region: str, **config: Any) -> Any:
    """A boto3 S3 client for a local endpoint with the fake credentials and path-style URLs."""
    options: dict[str, Any] = {
        "s3": {"addressing_style": "path"},
        "retries": {"mode": "standard", "total_max_attempts": 3},
    }
    options.update(config)
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
        config=Config(**options),
    )


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server listens and how to talk to it."""

    endpoint_url: str
    access_key: str = FAKE_ACCESS_KEY
    secret_key: str = FAKE_SECRET_KEY
    region: str = FAKE_REGION

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server; `config` overrides `botocore.config.Config` options."""
        return _client(self.endpoint_url, self.region, **config)


@dataclass
class S3Bucket:
    """One bucket on the test server. ETags returned here carry no surrounding quotes."""

    name: str
    server: S3Server
    _client: Any = field(repr=False)

    def put(self, key: str, body: bytes = b"x") -> str:
        """Upload one object over HTTP; returns its ETag (unquoted)."""
        response = self._client.put_object(Bucket=self.name, Key=key, Body=body)
        return str(response["ETag"]).strip('"')

    def put_many(self, keys: Iterable[str], body: bytes = b"x") -> str:
        """Store many objects at once, straight into moto's backend (no HTTP, ~25k keys/s).

        The objects are then indistinguishable from uploaded ones through the HTTP API. Returns
        the common ETag (unquoted; the MD5 of `body`, as S3 computes it for single-part uploads).
        """
        etag = hashlib.md5(body).hexdigest()
        backend = _backend_for(self.name)
        put_object = backend.put_object
        for key in keys:
            put_object(self.name, key, body, etag=etag, disable_notification=True)
        return etag

    def delete(self, key: str) -> None:
        """Delete one object over HTTP."""
        self._client.delete_object(Bucket=self.name, Key=key)


def _backend_for(bucket: str) -> Any:
    """moto's in-process S3 backend holding `bucket` (the one the HTTP server serves)."""
    partition, account_id = s3_backends.bucket_accounts[bucket]
    return s3_backends[account_id][partition]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    saved = {name: os.environ.get(name) for name in (*_FAKE_ENV, *_HIDDEN_ENV)}
    for name in _HIDDEN_ENV:
        os.environ.pop(name, None)
    os.environ.update(_FAKE_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    client = s3_server.client()
    name = f"loraledger-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return S3Bucket(name=name, server=s3_server, _client=client)


# --- fault injection -------------------------------------------------------------------------

_DEFAULT_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Service is unable to handle request.",
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


@dataclass
class _Fault:
    status: int
    code: str
    message: str


class FaultyEndpoint:
    """An HTTP proxy to the test server that can be told to fail the next requests.

    `endpoint_url` is the proxy's address; `requests_seen` counts every request that reached it
    and `faults_served` those answered with an injected error.
    """

    def __init__(self, upstream: S3Server) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.requests_seen = 0
        self.faults_served = 0
        upstream_host, _, upstream_port = upstream.endpoint_url.removeprefix("http://").partition(":")
        self._upstream_address = (upstream_host, int(upstream_port))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="s3-fault-proxy", daemon=True
        )
        host, port = self._httpd.server_address[:2]
        self.endpoint_url = f"http://{host!s}:{port}"
        self.access_key = upstream.access_key
        self.secret_key = upstream.secret_key
        self.region = upstream.region

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client pointed at the proxy (fake credentials, path-style)."""
        return _client(self.endpoint_url, self.region, **config)

    def fail_next(
        self, n: int, status: int = 503, code: str = "SlowDown", message: str | None = None
    ) -> None:
        """Answer the next `n` requests with `status` and an S3 error document with `code`."""
        fault = _Fault(status, code, message or _DEFAULT_MESSAGES.get(code, "Injected fault."))
        with self._lock:
            self._faults.extend([fault] * n)

    def heal(self) -> None:
        """Drop any faults not yet served."""
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            self.requests_seen += 1
            if not self._faults:
                return None
            self.faults_served += 1
            return self._faults.pop(0)


def _make_handler(proxy: FaultyEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        _upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

        def _handle(self) -> None:
            body = self._read_body()
            fault = proxy._next_fault()
            if fault is not None:
                self._send_fault(fault)
            else:
                self._forward(body)

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send_fault(self, fault: _Fault) -> None:
            request_id = uuid.uuid4().hex[:16].upper()
            document = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(fault.code)}</Code>"
                f"<Message>{escape(fault.message)}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
            ).encode()
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("x-amz-request-id", request_id)
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(document)

        def _forward(self, body: bytes) -> None:
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
            }
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            try:
                response = self._send_upstream(headers, body)
            except (OSError, http.client.HTTPException):
                # A stale keep-alive connection to moto: retry once on a fresh one.
                self._close_upstream()
                response = self._send_upstream(headers, body)
            payload = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                lower = name.lower()
                if lower in _HOP_BY_HOP or (lower == "content-length" and self.command != "HEAD"):
                    continue
                if lower in ("server", "date"):
                    continue  # send_response already wrote these
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self.end_headers()

        def _send_upstream(self, headers: dict[str, str], body: bytes) -> http.client.HTTPResponse:
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*proxy._upstream_address, timeout=60)
            self._upstream.request(self.command, self.path, body=body or None, headers=headers)
            return self._upstream.getresponse()

        def _close_upstream(self) -> None:
            if self._upstream is not None:
                self._upstream.close()
                self._upstream = None

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                self._close_upstream()

    return Handler


@pytest.fixture
def s3_faulty_endpoint(s3_server: S3Server) -> Iterator[FaultyEndpoint]:
    proxy = FaultyEndpoint(s3_server)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
