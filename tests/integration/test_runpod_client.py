"""RunPodClient against the RunPod stub over real HTTP (tests/support/runpod_stub.py)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from loraledger.adapters.runpod import (
    DEFAULT_MODEL_NAME_FIELD,
    RunPodClient,
    RunPodError,
    RunPodRefused,
    RunPodUnavailable,
)
from loraledger.adapters.runpod_input import build_run_input
from tests.support.runpod_stub import RunPodStub

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runpod"
WEBHOOK = "http://127.0.0.1:9/api/training-webhook?token=s3cret"

ClientFactory = Callable[..., RunPodClient]


@pytest.fixture
def make_client(runpod_stub: RunPodStub) -> Iterator[ClientFactory]:
    """Clients on the stub with tiny backoff so retry tests take milliseconds."""
    clients: list[RunPodClient] = []

    def make(**overrides: Any) -> RunPodClient:
        options: dict[str, Any] = {
            "base_url": runpod_stub.base_url,
            "endpoint_id": runpod_stub.endpoint_id,
            "api_key": runpod_stub.api_key,
            "timeout": 2.0,
            "attempts": 4,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
        }
        options.update(overrides)
        client = RunPodClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def style_input(model_name: str = "style_82_vV6") -> dict[str, Any]:
    return build_run_input(
        {
            "training_config": {"mode": "custom-styles", "user_id": "actor_maker_user"},
            "training_data": {"s3_urls": ["s3://bucket/styles/82/a.jpg"]},
        },
        DEFAULT_MODEL_NAME_FIELD,
        model_name,
        {"learning_rate": 0.0003, "max_train_steps": 3600},
    )


# -- /run ----------------------------------------------------------------------------------------


def test_run_returns_queued_job_id_with_e1_suffix(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    job = make_client().run(style_input(), WEBHOOK)

    assert job.id.endswith("-e1")
    assert job.status == "IN_QUEUE"
    assert job.id in runpod_stub.jobs


def test_run_input_reaches_runpod_with_model_name_at_dotted_path_and_parameters_beside_it(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    job = make_client().run(style_input("style_82_vV6"), WEBHOOK)

    recorded = runpod_stub.jobs[job.id]
    config = recorded.input["training_config"]
    assert config["model_name"] == "style_82_vV6"
    assert config["learning_rate"] == 0.0003
    assert config["max_train_steps"] == 3600
    assert config["mode"] == "custom-styles"
    assert recorded.input["training_data"] == {"s3_urls": ["s3://bucket/styles/82/a.jpg"]}
    assert recorded.webhook == WEBHOOK


def test_run_without_webhook_omits_the_webhook_field(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    job = make_client().run(style_input(), None)

    assert "webhook" not in runpod_stub.jobs[job.id].request_body


def test_requests_carry_the_api_key_as_bearer_token(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    client = make_client()
    job = client.run(style_input(), WEBHOOK)
    client.status(job.id)

    assert [(r.method, r.auth_present, r.auth_ok) for r in runpod_stub.request_log] == [
        ("POST", True, True),
        ("GET", True, True),
    ]
    assert runpod_stub.request_log[0].path == f"/v2/{runpod_stub.endpoint_id}/run"


def test_wrong_api_key_is_refused_with_401_and_not_retried(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    client = make_client(api_key="rpa_WRONGKEY")

    with pytest.raises(RunPodRefused) as caught:
        client.run(style_input(), WEBHOOK)

    assert caught.value.status_code == 401
    assert caught.value.retryable is False
    assert len(runpod_stub.request_log) == 1
    assert runpod_stub.jobs == {}


def test_bad_request_400_is_refused_without_retry(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    runpod_stub.fail_next(1, 400)

    with pytest.raises(RunPodRefused) as caught:
        make_client().run(style_input(), WEBHOOK)

    assert caught.value.status_code == 400
    assert len(runpod_stub.request_log) == 1


def test_unknown_endpoint_on_run_is_a_runpod_error_without_retry(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    with pytest.raises(RunPodError) as caught:
        make_client(endpoint_id="no-such-endpoint").run(style_input(), WEBHOOK)

    assert caught.value.status_code == 404
    assert not isinstance(caught.value, (RunPodRefused, RunPodUnavailable))
    assert "not found" in str(caught.value)
    assert len(runpod_stub.request_log) == 1


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status_code", [429, 503, 500])
def test_transient_failures_twice_then_success_succeeds_on_third_request(
    make_client: ClientFactory, runpod_stub: RunPodStub, status_code: int
) -> None:
    runpod_stub.fail_next(2, status_code, retry_after="0")

    job = make_client().run(style_input(), WEBHOOK)

    assert job.id in runpod_stub.jobs
    assert len(runpod_stub.request_log) == 3
    assert [r.status_code for r in runpod_stub.request_log] == [status_code, status_code, 200]


def test_persistent_500_raises_unavailable_after_all_attempts(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    runpod_stub.fail_next(10, 500)

    with pytest.raises(RunPodUnavailable) as caught:
        make_client(attempts=3).run(style_input(), WEBHOOK)

    assert len(runpod_stub.request_log) == 3
    assert caught.value.status_code == 500
    assert caught.value.retryable is True
    assert "gave up after 3 attempts" in str(caught.value)
    assert runpod_stub.jobs == {}


def test_persistent_429_on_status_raises_unavailable_after_all_attempts(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    runpod_stub.fail_next(10, 429)

    with pytest.raises(RunPodUnavailable) as caught:
        make_client(attempts=2).status("abc-e1")

    assert caught.value.status_code == 429
    assert len(runpod_stub.request_log) == 2


def test_retry_after_header_sets_the_wait_before_the_next_attempt(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    runpod_stub.fail_next(1, 429, retry_after="1")
    client = make_client(backoff_initial=0.0, backoff_max=5.0)

    started = time.monotonic()
    client.run(style_input(), WEBHOOK)

    assert time.monotonic() - started >= 0.9
    assert len(runpod_stub.request_log) == 2


def test_retry_after_longer_than_backoff_max_is_capped(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    runpod_stub.fail_next(2, 429, retry_after="3600")
    client = make_client(backoff_max=0.05)

    started = time.monotonic()
    client.run(style_input(), WEBHOOK)

    assert time.monotonic() - started < 2
    assert len(runpod_stub.request_log) == 3


def test_timeout_on_every_attempt_raises_unavailable(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    runpod_stub.delay_next(2, 1.0)

    with pytest.raises(RunPodUnavailable) as caught:
        make_client(timeout=0.2, attempts=2).status("abc-e1")

    assert "timed out" in str(caught.value)
    assert caught.value.status_code is None
    assert len(runpod_stub.request_log) == 2


def test_one_timeout_then_a_prompt_answer_succeeds(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    client = make_client(timeout=0.2)
    job = client.run(style_input(), WEBHOOK)
    runpod_stub.delay_next(1, 1.0)

    assert client.status(job.id) == {
        "id": job.id,
        "status": "IN_QUEUE",
        "delayTime": 0,
        "executionTime": 0,
    }
    assert len(runpod_stub.request_log) == 3


def test_connection_refused_raises_unavailable_after_all_attempts(
    runpod_stub: RunPodStub,
) -> None:
    with (
        RunPodClient(
            f"http://127.0.0.1:{_unused_port()}/v2",
            runpod_stub.endpoint_id,
            runpod_stub.api_key,
            attempts=2,
            backoff_initial=0.01,
            backoff_max=0.02,
        ) as client,
        pytest.raises(RunPodUnavailable) as caught,
    ):
        client.status("abc-e1")

    assert "connection failed" in str(caught.value)
    assert "gave up after 2 attempts" in str(caught.value)


def _unused_port() -> int:
    """A localhost port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- /status ---------------------------------------------------------------------------------------


def test_status_of_completed_job_carries_its_output(
    make_client: ClientFactory, runpod_stub: RunPodStub
) -> None:
    client = make_client()
    job = client.run(style_input("style_82_vV6"), WEBHOOK)
    runpod_stub.complete(job.id, deliver=False)

    answer = client.status(job.id)

    assert answer is not None
    assert answer["status"] == "COMPLETED"
    assert answer["output"]["loraName"] == "style_82_vV6.safetensors"
    assert "error" not in answer


def test_status_of_failed_job_carries_its_error(make_client: ClientFactory, runpod_stub: RunPodStub) -> None:
    client = make_client()
    job = client.run(style_input(), WEBHOOK)
    runpod_stub.fail(job.id, deliver=False)

    answer = client.status(job.id)

    assert answer is not None
    assert answer["status"] == "FAILED"
    assert answer["error"] == "Training workflow processing failed"


def test_status_of_expired_job_is_none(make_client: ClientFactory, runpod_stub: RunPodStub) -> None:
    client = make_client()
    job = client.run(style_input(), WEBHOOK)
    runpod_stub.expire(job.id)

    assert client.status(job.id) is None
    assert len(runpod_stub.request_log) == 2  # a 404 is an answer, not a failure to retry


def test_status_of_unknown_job_is_none(make_client: ClientFactory) -> None:
    assert make_client().status("00000000-0000-0000-0000-000000000000-e1") is None


@pytest.mark.parametrize(
    "job_id",
    ["../x", "a/b", "x?y=1", "x#y", "a%2Fb", "a b", "a.b", "", "x" * 129, "é"],
)
def test_invalid_job_id_is_rejected_before_any_request(
    make_client: ClientFactory, runpod_stub: RunPodStub, job_id: str
) -> None:
    with pytest.raises(ValueError):
        make_client().status(job_id)

    assert runpod_stub.request_log == []


@pytest.mark.parametrize("endpoint_id", ["../v1", "ep/run", "ep?x=1", ""])
def test_invalid_endpoint_id_is_rejected_when_the_client_is_built(endpoint_id: str) -> None:
    with pytest.raises(ValueError):
        RunPodClient("https://api.runpod.ai/v2", endpoint_id, "rpa_KEY")


# -- secrets ---------------------------------------------------------------------------------------


def _texts_of(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def test_api_key_never_appears_in_errors_reprs_or_logs(
    make_client: ClientFactory, runpod_stub: RunPodStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = runpod_stub.api_key
    client = make_client(timeout=0.2, attempts=2)
    seen: list[str] = [repr(client), str(client)]

    runpod_stub.fail_next(2, 500)
    with pytest.raises(RunPodUnavailable) as unavailable:
        client.run(style_input(), WEBHOOK)
    seen.append(_texts_of(unavailable.value))

    runpod_stub.delay_next(2, 1.0)
    with pytest.raises(RunPodUnavailable) as timed_out:
        client.status("abc-e1")
    seen.append(_texts_of(timed_out.value))

    runpod_stub.fail_next(1, 401)
    with pytest.raises(RunPodRefused) as refused:
        client.status("abc-e1")
    seen.append(_texts_of(refused.value))

    seen.append(caplog.text)
    assert caplog.records, "expected retry warnings to be logged"
    for text in seen:
        assert key not in text
        assert "s3cret" not in text  # the webhook URL's secret is not logged either


def test_api_key_with_control_characters_is_rejected_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        RunPodClient("https://api.runpod.ai/v2", "ep1", "rpa_SECRET\r\nX-Evil: 1")

    assert "rpa_SECRET" not in str(caught.value)


def test_key_echoed_in_an_error_body_is_redacted_from_the_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": f"bad key {request.headers['Authorization']}"})

    with (
        RunPodClient(
            "https://api.runpod.ai/v2", "ep1", "rpa_ECHOED", transport=httpx.MockTransport(handler)
        ) as client,
        pytest.raises(RunPodRefused) as caught,
    ):
        client.run({}, None)

    assert "rpa_ECHOED" not in _texts_of(caught.value)


def test_a_refusal_quoting_the_webhook_url_names_no_token_in_errors_or_retry_logs(
    make_client: ClientFactory, runpod_stub: RunPodStub, caplog: pytest.LogCaptureFixture
) -> None:
    """RunPod's validation errors quote the request: the webhook URL's token must not come back
    through our messages, even before the service registered the secret (a `token=` value is
    always hidden), and a cut excerpt leaves no start of it either."""
    caplog.set_level(logging.DEBUG)
    client = make_client(attempts=2)
    seen: list[str] = []

    runpod_stub.echo_next(1, 400)
    with pytest.raises(RunPodRefused) as refused:
        client.run({"training_config": {"model_name": "style_1_vV1"}}, WEBHOOK)  # short: URL in the excerpt
    seen.append(_texts_of(refused.value))
    runpod_stub.echo_next(2, 503, render=lambda body: f"busy; your body was {body}".replace("/", "\\/"))
    with pytest.raises(RunPodUnavailable) as unavailable:
        client.run({}, WEBHOOK)
    seen.append(_texts_of(unavailable.value))
    seen.append(caplog.text)

    assert "retrying in" in caplog.text
    assert "HTTP 400 refused" in refused.value.message and "token=***" in refused.value.message
    for text in seen:
        assert "s3cret" not in text and "s3c" not in text, text


# -- answers the stub does not produce (in-process transport) --------------------------------------


def _client_answering(response: httpx.Response) -> RunPodClient:
    return RunPodClient(
        "https://api.runpod.ai/v2",
        "ep1",
        "rpa_KEY",
        attempts=1,
        transport=httpx.MockTransport(lambda request: response),
    )


def test_run_answer_that_is_not_json_is_a_clear_runpod_error() -> None:
    client = _client_answering(
        httpx.Response(200, text="<html>gateway</html>", headers={"Content-Type": "text/html"})
    )
    with client, pytest.raises(RunPodError) as caught:
        client.run({}, None)

    assert "not JSON" in str(caught.value)
    assert caught.value.retryable is False


def test_run_answer_without_id_is_a_clear_runpod_error() -> None:
    client = _client_answering(httpx.Response(200, json={"status": "IN_QUEUE"}))
    with client, pytest.raises(RunPodError) as caught:
        client.run({}, None)

    assert "no job 'id'" in str(caught.value)


@pytest.mark.parametrize(
    "job_id",
    ["../../etc/passwd", "a/b", "abc?x=1", "abc#f", "abc%2F", "job id", "x" * 129, "\u0661\u0662", "abc\n"],
)
def test_run_answer_with_a_job_id_that_is_not_a_safe_segment_is_a_clear_runpod_error(job_id: str) -> None:
    client = _client_answering(httpx.Response(200, json={"id": job_id, "status": "IN_QUEUE"}))
    with client, pytest.raises(RunPodError) as caught:
        client.run({}, None)

    assert "unusable job id" in str(caught.value)
    assert caught.value.retryable is False
    assert len(str(caught.value)) < 300


# -- the stub's webhooks ---------------------------------------------------------------------------


class _Receiver:
    """A tiny real webhook receiver: records bodies, answers `answer` (200 by default)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.answer = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/training-webhook"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


def _key_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _key_shape(v) for k, v in value.items() if k != "input"}
    return type(value).__name__


def test_stub_completed_webhook_has_the_shape_of_the_recorded_fixture(
    make_client: ClientFactory, runpod_stub: RunPodStub, receiver: _Receiver
) -> None:
    fixture = json.loads(
        (FIXTURES / "webhook_completed_33c95471-5e61-406c-9287-1b8f8de0bae8-e1.json").read_text()
    )
    job = make_client().run(fixture["input"], receiver.url)

    delivery = runpod_stub.complete(job.id)

    assert delivery.status_codes == [200]
    assert receiver.bodies == [dict(delivery)]
    body = receiver.bodies[0]
    assert _key_shape(body) == _key_shape(fixture)
    assert body["id"] == job.id
    assert body["input"] == fixture["input"]
    assert body["webhook"] == receiver.url
    assert body["output"]["loraName"] == "style_82_vV6.safetensors"
    assert body["output"]["job_id"] == fixture["output"]["job_id"]
    assert body["output"]["training_type"] == "style"


def test_stub_failed_webhook_has_the_shape_of_the_recorded_fixture(
    make_client: ClientFactory, runpod_stub: RunPodStub, receiver: _Receiver
) -> None:
    fixture = json.loads(
        (FIXTURES / "webhook_failed_cd7d6654-c0f1-47c8-85a6-64152f1f95db-e1.json").read_text()
    )
    job = make_client().run(fixture["input"], receiver.url)

    delivery = runpod_stub.fail(job.id)

    assert delivery.status_codes == [200]
    assert _key_shape(receiver.bodies[0]) == _key_shape(fixture)
    assert receiver.bodies[0]["output"]["training_type"] == "character"


def test_stub_repeats_a_webhook_and_reports_each_answer(
    make_client: ClientFactory, runpod_stub: RunPodStub, receiver: _Receiver
) -> None:
    receiver.answer = 500
    job = make_client().run(style_input(), receiver.url)

    delivery = runpod_stub.complete(job.id, lora_url="http://s3.local/b/x.safetensors", deliveries=3)

    assert delivery.status_codes == [500, 500, 500]
    assert len(receiver.bodies) == 3
    assert all(body == receiver.bodies[0] for body in receiver.bodies)
    assert delivery["output"]["loraUrl"] == "http://s3.local/b/x.safetensors"
    assert runpod_stub.webhook_body(job.id) == dict(delivery)
