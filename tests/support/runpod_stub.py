"""A RunPod serverless stand-in that tests run as a real HTTP server (pytest plugin).

Fixture `runpod_stub` starts `RunPodStub` on 127.0.0.1 (free port, background thread) for one
test. It follows RunPod's documented API (see /work/shared/notes/runpod.md):

- `POST /v2/{endpoint_id}/run` with `Authorization: Bearer <key>` and `{"input": {...},
  "webhook": "..."}` answers `{"id": "<uuid4>-e1", "status": "IN_QUEUE"}` and records the job;
- `GET /v2/{endpoint_id}/status/{id}` answers `{"id", "status", "delayTime", "executionTime",
  "output"?, "error"?}`, or 404 for unknown or expired jobs;
- `POST /v2/{endpoint_id}/cancel/{id}` answers `{"id", "status"}`: a job in the queue or in progress
  becomes `CANCELLED` (no webhook is sent by itself: RunPod's CANCELLED webhook is unconfirmed, so
  a test sends it with `deliver()`); an ended job keeps its status; an unknown one answers 404;
- a wrong or missing key answers 401 `{"error": "Unauthorized"}`; an unknown endpoint 404.

Tests drive it from Python: `complete()` / `fail()` end a job and POST a webhook body shaped like
tests/fixtures/runpod/webhook_*.json to the job's webhook URL; `expire()` makes `/status` 404;
`fail_next()` / `delay_next()` inject faults; `echo_next()` makes `/run` refuse with an error that
quotes the request body (webhook URL and its token included), as validation errors often do;
`request_log` shows every request that arrived.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

__all__ = ["LoggedRequest", "RunPodStub", "StubJob", "WebhookDelivery", "runpod_stub"]

DEFAULT_ENDPOINT_ID = "loratrain-stub"
DEFAULT_SIZE_BYTES = 153_272_040
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


@dataclass
class StubJob:
    """A job the stub accepted on `/run`."""

    id: str
    endpoint_id: str
    input: dict[str, Any]
    webhook: str | None
    policy: dict[str, Any] | None = None
    request_body: dict[str, Any] = field(default_factory=dict)  # the /run body as received
    status: str = "IN_QUEUE"
    created: float = field(default_factory=time.monotonic)
    delay_time: int = 0
    execution_time: int = 0
    output: Any = None
    error: str | None = None
    expired: bool = False
    webhook_body: dict[str, Any] | None = None

    @property
    def model_name(self) -> str | None:
        config = self.input.get("training_config")
        name = config.get("model_name") if isinstance(config, dict) else None
        return name if isinstance(name, str) else None


@dataclass
class LoggedRequest:
    """One request as it arrived (logged before any injected delay or fault)."""

    method: str
    path: str
    auth_present: bool
    auth_ok: bool
    status_code: int | None = None  # filled in once the stub answered


class WebhookDelivery(dict[str, Any]):
    """The webhook body that was (or would have been) POSTed, plus what the receiver answered.

    `status_codes` has one entry per delivery: the receiver's HTTP status, or None when it could
    not be reached (connection error or timeout; the exception is in `errors`).
    """

    def __init__(self, body: dict[str, Any], url: str | None) -> None:
        super().__init__(body)
        self.url = url
        self.status_codes: list[int | None] = []
        self.errors: list[Exception] = []


class RunPodStub:
    """The stub server and its control surface (the `runpod_stub` fixture, or start()/stop())."""

    def __init__(self, endpoint_id: str = DEFAULT_ENDPOINT_ID, api_key: str | None = None) -> None:
        self.endpoint_id = endpoint_id
        self.api_key = api_key or f"rpa_STUBKEY{uuid.uuid4().hex.upper()}"
        self.jobs: dict[str, StubJob] = {}
        self.request_log: list[LoggedRequest] = []
        # Used to POST webhooks; replace with e.g. a Starlette TestClient to deliver in-process.
        self.webhook_client: httpx.Client = httpx.Client(timeout=10.0)
        self._lock = threading.Lock()
        self._faults: deque[tuple[int, str | None]] = deque()
        self._delays: deque[float] = deque()
        self._echoes: deque[tuple[int, Callable[[str], str] | None]] = deque()
        self._forced_ids: deque[str] = deque()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RunPodStub:
        server = _StubServer(("127.0.0.1", 0), _Handler, self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock keep-alive reads so handler threads end
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.webhook_client.close()

    def __enter__(self) -> RunPodStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("RunPodStub is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What `RunPodClient(base_url=...)` takes, e.g. `http://127.0.0.1:PORT/v2`."""
        return f"http://127.0.0.1:{self.port}/v2"

    # -- fault injection ---------------------------------------------------------------------

    def fail_next(self, n: int, status_code: int, *, retry_after: str | None = "0") -> None:
        """The next `n` requests to /run or /status answer `status_code` (before auth checks).

        429 and 503 answers carry `Retry-After: <retry_after>` unless `retry_after` is None.
        """
        with self._lock:
            self._faults.extend([(status_code, retry_after)] * n)

    def echo_next(
        self, n: int, status_code: int = 400, *, render: Callable[[str], str] | None = None
    ) -> None:
        """The next `n` authorised `/run` requests answer `status_code` with an error quoting the
        request body: `{"error": "invalid request", "request": "<body>"}`, or `render(body)` as the
        whole answer text. 429 and 503 answers carry `Retry-After: 0`."""
        with self._lock:
            self._echoes.extend([(status_code, render)] * n)

    def answer_next_run_with(self, *job_ids: str) -> None:
        """The next `/run` requests answer these job ids instead of fresh ones (a RunPod that
        repeats an id, or answers one that is not an id); a repeated id keeps its first job."""
        with self._lock:
            self._forced_ids.extend(job_ids)

    def delay_next(self, n: int, seconds: float) -> None:
        """The next `n` requests sleep `seconds` before being answered."""
        with self._lock:
            self._delays.extend([seconds] * n)

    # -- job control -------------------------------------------------------------------------

    def complete(
        self,
        job_id: str,
        *,
        lora_url: str | None = None,
        output_status: str = "success",
        deliver: bool = True,
        deliveries: int = 1,
    ) -> WebhookDelivery:
        """End the job COMPLETED and (if `deliver`) POST the webhook `deliveries` times.

        With `output_status` other than "success" the worker "caught its own error": the job is
        still COMPLETED, `output.status` is that value, and the LoRA fields (loraName, loraUrl,
        model_info) are left out unless `lora_url` is given.
        """
        with self._lock:
            job = self._job(job_id)
            model_name = job.model_name
            if model_name is None:
                raise ValueError(f"job {job_id} has no input.training_config.model_name")
            self._stamp_times(job)
            config = _training_config(job)
            user_id = config.get("user_id", "actor_maker_user")
            training_type = _training_type(config, model_name)
            output: dict[str, Any] = {"job_id": config.get("request_id")}
            if output_status == "success" or lora_url is not None:
                url = lora_url or _default_lora_url(training_type, user_id, model_name)
                output["loraName"] = f"{model_name}.safetensors"
                output["loraUrl"] = url
            if output_status == "success":
                seconds = job.execution_time / 1000
                output["message"] = f"LoRA training completed successfully in {seconds:.2f} seconds"
            else:
                output["message"] = f"LoRA training failed ({output_status})"
            if "loraUrl" in output:
                output["model_info"] = {
                    "download_url": output["loraUrl"],
                    "file_extension": ".safetensors",
                    "model_type": "lora",
                    "name": f"{model_name}.safetensors",
                    "size_bytes": DEFAULT_SIZE_BYTES,
                }
            output["status"] = output_status
            output["tenant_id"] = config.get("tenant_id", "actor_maker")
            output["training_type"] = training_type
            output["user_id"] = user_id
            job.status = "COMPLETED"
            job.output = output
            job.error = None
            job.webhook_body = {
                "delayTime": job.delay_time,
                "executionTime": job.execution_time,
                "id": job.id,
                "input": copy.deepcopy(job.input),
                "output": copy.deepcopy(output),
                "status": "COMPLETED",
                "webhook": job.webhook,
            }
        return self._deliver(job, deliveries if deliver else 0)

    def fail(
        self,
        job_id: str,
        error: str = "Training workflow processing failed",
        deliver: bool = True,
    ) -> WebhookDelivery:
        """End the job FAILED with `error` and (if `deliver`) POST the webhook once."""
        with self._lock:
            job = self._job(job_id)
            self._stamp_times(job)
            config = _training_config(job)
            output = {
                "job_id": config.get("request_id"),
                "tenant_id": config.get("tenant_id", "actor_maker"),
                "training_type": _training_type(config, job.model_name or ""),
                "user_id": config.get("user_id", "actor_maker_user"),
            }
            job.status = "FAILED"
            job.output = output
            job.error = error
            job.webhook_body = {
                "delayTime": job.delay_time,
                "error": error,
                "executionTime": job.execution_time,
                "id": job.id,
                "input": copy.deepcopy(job.input),
                "output": copy.deepcopy(output),
                "status": "FAILED",
                "webhook": job.webhook,
            }
        return self._deliver(job, 1 if deliver else 0)

    def deliver(self, job_id: str, deliveries: int = 1) -> WebhookDelivery:
        """POST the ended job's webhook body again (a late repeat, as RunPod sometimes sends)."""
        with self._lock:
            job = self._job(job_id)
        return self._deliver(job, deliveries)

    def webhook_body(self, job_id: str) -> dict[str, Any]:
        """The webhook body of an ended job (after complete()/fail()), without sending it."""
        with self._lock:
            job = self._job(job_id)
            if job.webhook_body is None:
                raise ValueError(f"job {job_id} has not ended: call complete() or fail() first")
            return copy.deepcopy(job.webhook_body)

    def expire(self, job_id: str) -> None:
        """RunPod forgot the job (TTL passed): `/status` answers 404 from now on."""
        with self._lock:
            self._job(job_id).expired = True

    def set_status(self, job_id: str, status: str) -> None:
        """Move a job to a non-final status such as IN_PROGRESS (no webhook)."""
        with self._lock:
            self._job(job_id).status = status

    # -- internals ---------------------------------------------------------------------------

    def _job(self, job_id: str) -> StubJob:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise KeyError(f"RunPodStub has no job {job_id!r}") from None

    @staticmethod
    def _stamp_times(job: StubJob) -> None:
        elapsed_ms = max(1, int((time.monotonic() - job.created) * 1000))
        job.delay_time = max(1, elapsed_ms // 10)
        job.execution_time = elapsed_ms

    def _deliver(self, job: StubJob, times: int) -> WebhookDelivery:
        assert job.webhook_body is not None
        delivery = WebhookDelivery(copy.deepcopy(job.webhook_body), job.webhook)
        if times > 0 and job.webhook is None:
            raise ValueError(f"job {job.id} was started without a webhook URL")
        for _ in range(times):
            assert job.webhook is not None
            try:
                response = self.webhook_client.post(job.webhook, json=job.webhook_body)
            except httpx.HTTPError as exc:
                delivery.status_codes.append(None)
                delivery.errors.append(exc)
            else:
                delivery.status_codes.append(response.status_code)
        return delivery

    def _take_fault(self) -> tuple[float, tuple[int, str | None] | None]:
        with self._lock:
            delay = self._delays.popleft() if self._delays else 0.0
            fault = self._faults.popleft() if self._faults else None
        return delay, fault


def _training_config(job: StubJob) -> dict[str, Any]:
    config = job.input.get("training_config")
    return config if isinstance(config, dict) else {}


def _training_type(config: dict[str, Any], model_name: str) -> str:
    mode = config.get("mode")
    if mode == "custom-styles" or (mode is None and model_name.startswith("style_")):
        return "style"
    if mode == "custom-actors" or (mode is None and model_name.startswith("actor_")):
        return "character"
    return "style"


def _default_lora_url(training_type: str, user_id: str, model_name: str) -> str:
    # The two URL forms seen in tests/fixtures/runpod/webhook_completed_*.json.
    if training_type == "character":
        return (
            "https://s3-accelerate.amazonaws.com/storyboard-user-files/"
            f"{user_id}/custom-actors/models/{model_name}.safetensors"
        )
    return (
        "https://storyboard-user-files.s3-accelerate.amazonaws.com/"
        f"{user_id}/custom-styles-models/{model_name}.safetensors"
    )


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], stub: RunPodStub):
        self.stub = stub
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are part of the tests; don't print their tracebacks.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # includes ConnectionError and TimeoutError
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close eventually
    server: _StubServer

    # -- plumbing ----------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with self.server.stub._lock:
            self.server.stub._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.stub._lock:
            self.server.stub._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_text(code, json.dumps(payload), headers)

    def _send_text(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self._entry.status_code = code

    # -- behaviour ---------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization")
        path = urlsplit(self.path).path
        self._entry = LoggedRequest(
            method=method,
            path=path,
            auth_present=auth is not None,
            auth_ok=auth == f"Bearer {stub.api_key}",
        )
        with stub._lock:
            stub.request_log.append(self._entry)

        delay, fault = stub._take_fault()
        if delay > 0 and stub._stopping.wait(delay):
            self.close_connection = True
            return
        if fault is not None:
            code, retry_after = fault
            headers = {}
            if retry_after is not None and code in (429, 503):
                headers["Retry-After"] = retry_after
            self._send_json(code, {"error": HTTPStatus(code).phrase}, headers)
            return

        if not self._entry.auth_ok:
            self._send_json(401, {"error": "Unauthorized"})
            return
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "v2":
            self._send_json(404, {"error": "Not Found"})
            return
        if parts[1] != stub.endpoint_id:
            self._send_json(404, {"error": f"endpoint {parts[1]} not found"})
            return
        if method == "POST" and parts[2:] == ["run"]:
            self._run(raw)
        elif method == "GET" and len(parts) == 4 and parts[2] == "status":
            self._status(parts[3])
        elif method == "POST" and len(parts) == 4 and parts[2] == "cancel":
            self._cancel(parts[3])
        else:
            self._send_json(404, {"error": "Not Found"})

    def _run(self, raw: bytes) -> None:
        stub = self.server.stub
        with stub._lock:
            echo = stub._echoes.popleft() if stub._echoes else None
        if echo is not None:
            code, render = echo
            quoted = raw.decode("utf-8", "replace")
            text = render(quoted) if render else json.dumps({"error": "invalid request", "request": quoted})
            self._send_text(code, text, {"Retry-After": "0"} if code in (429, 503) else None)
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._send_json(400, {"error": "invalid JSON body"})
            return
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            self._send_json(400, {"error": "body must be an object with an 'input' object"})
            return
        webhook = body.get("webhook")
        if webhook is not None and not isinstance(webhook, str):
            self._send_json(400, {"error": "'webhook' must be a string"})
            return
        policy = body.get("policy") if isinstance(body.get("policy"), dict) else None
        with stub._lock:
            forced = stub._forced_ids.popleft() if stub._forced_ids else None
        job = StubJob(
            id=forced if forced is not None else f"{uuid.uuid4()}-e1",
            endpoint_id=stub.endpoint_id,
            input=body["input"],
            webhook=webhook,
            policy=policy,
            request_body=copy.deepcopy(body),
        )
        with stub._lock:
            stub.jobs.setdefault(job.id, job)
        self._send_json(200, {"id": job.id, "status": job.status})

    def _status(self, job_id: str) -> None:
        stub = self.server.stub
        with stub._lock:
            job = stub.jobs.get(job_id)
            if job is None or job.expired:
                answer = None
            else:
                answer = {
                    "id": job.id,
                    "status": job.status,
                    "delayTime": job.delay_time,
                    "executionTime": job.execution_time,
                }
                if job.output is not None:
                    answer["output"] = copy.deepcopy(job.output)
                if job.error is not None:
                    answer["error"] = job.error
        if answer is None:
            self._send_json(404, {"error": f"job {job_id} not found"})
        else:
            self._send_json(200, answer)

    def _cancel(self, job_id: str) -> None:
        stub = self.server.stub
        with stub._lock:
            job = stub.jobs.get(job_id)
            if job is not None and not job.expired and job.status in ("IN_QUEUE", "IN_PROGRESS"):
                job.status = "CANCELLED"
                job.webhook_body = {
                    "delayTime": job.delay_time,
                    "executionTime": job.execution_time,
                    "id": job.id,
                    "input": copy.deepcopy(job.input),
                    "status": "CANCELLED",
                    "webhook": job.webhook,
                }
            answer = None if job is None or job.expired else {"id": job.id, "status": job.status}
        if answer is None:
            self._send_json(404, {"error": f"job {job_id} not found"})
        else:
            self._send_json(200, answer)


@pytest.fixture
def runpod_stub() -> Iterator[RunPodStub]:
    """A started RunPodStub for one test; stopped afterwards."""
    stub = RunPodStub().start()
    try:
        yield stub
    finally:
        stub.stop()
