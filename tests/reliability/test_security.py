"""Secrets: the webhook secret and the API token are compared in constant time, the webhook
secret is required, and no secret (API token, webhook secret, RunPod key, AWS keys, database
password) ever shows in a log line, an error body or a command's output, whatever goes wrong.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

from tests.reliability.helpers import figures
from tests.support.s3_server import FaultyEndpoint
from tests.support.server import LedgerServer, ServerFactory

ROOT = Path(__file__).resolve().parents[2]
API_TOKEN = "api-TOKEN-7f3e9c1d-reliability"
WEBHOOK_SECRET = "whsec-9b2d4e-reliability-SECRET"
RUNPOD_KEY = "rpa_WRONGKEY0reliability5c8e"
AWS_ACCESS_KEY = "AKIARELIABILITY7EXMP"
AWS_SECRET_KEY = "Rel1abiLity/SecretKey+ForTests0000000000"  # 40 characters, like a real one
DB_PASSWORD = "pg-Pa55-reliability-1c9e"
SECRETS = (API_TOKEN, WEBHOOK_SECRET, RUNPOD_KEY, AWS_ACCESS_KEY, AWS_SECRET_KEY, DB_PASSWORD)


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _provoke(server: LedgerServer, faulty: FaultyEndpoint) -> tuple[list[str], dict[str, int]]:
    """Every kind of failure we can cause; returns the texts answered and the status codes."""
    texts: list[str] = []
    statuses: dict[str, int] = {}

    def call(case: str, method: str, path: str, **kwargs: object) -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        statuses[case] = response.status_code
        texts.append(f"{response.status_code} {response.headers} {response.text}")

    bearer = {"authorization": f"Bearer {API_TOKEN}"}
    for case, headers in {
        "no token": {},
        "wrong token": {"authorization": "Bearer nope"},
        "token prefix": {"authorization": f"Bearer {API_TOKEN[:-1]}"},
        "token + 1": {"authorization": f"Bearer {API_TOKEN}x"},
        "basic": {"authorization": f"Basic {API_TOKEN}"},
        "webhook secret as token": {"authorization": f"Bearer {WEBHOOK_SECRET}"},
    }.items():
        call(f"sync: {case}", "POST", "/sync/s3", headers=headers)
        call(f"start: {case}", "POST", "/styles/1/trainings", json={"version_name": "V1"}, headers=headers)
    for case, token in {"wrong": "nope", "prefix": WEBHOOK_SECRET[:-1], "api token": API_TOKEN}.items():
        call(
            f"webhook: {case}",
            "POST",
            f"/webhooks/runpod?token={token}",
            json={"id": "a-e1", "status": "COMPLETED"},
        )
    call("webhook: none", "POST", "/webhooks/runpod", json={"id": "a-e1", "status": "COMPLETED"})
    # RunPod refuses the key (401): the start is a 502 and the version failed with the reason.
    call("start: RunPod 401", "POST", "/styles/1/trainings", json={"version_name": "V2"}, headers=bearer)
    call("read after RunPod 401", "GET", "/styles/1/training_versions.json")
    call("history after RunPod 401", "GET", "/styles/1/versions/V2/history")
    call("reconcile: RunPod 401", "POST", "/reconcile?older_than=0s", headers=bearer)
    # S3 errors whose messages quote the credentials back (as AWS does for a wrong key id).
    faulty.fail_next(
        10,
        status=403,
        code="InvalidAccessKeyId",
        message=f"The AWS Access Key Id {AWS_ACCESS_KEY} does not exist",
    )
    call("sync: InvalidAccessKeyId", "POST", "/sync/s3", headers=bearer)
    faulty.heal()
    faulty.fail_next(
        10,
        status=403,
        code="SignatureDoesNotMatch",
        message=f"The request signature we calculated does not match; key {AWS_SECRET_KEY}",
    )
    call("sync: SignatureDoesNotMatch", "POST", "/sync/s3", headers=bearer)
    faulty.heal()
    faulty.fail_next(10, status=503, code="SlowDown")
    call("sync: SlowDown", "POST", "/sync/s3", headers=bearer)
    faulty.heal()
    return texts, statuses


def _secret_env(faulty: FaultyEndpoint) -> dict[str, str]:
    return {
        "LORALEDGER_API_TOKEN": API_TOKEN,
        "LORALEDGER_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LORALEDGER_RUNPOD_API_KEY": RUNPOD_KEY,
        "LORALEDGER_S3_ENDPOINT_URL": faulty.endpoint_url,
        "LORALEDGER_S3_MAX_ATTEMPTS": "2",
        "LORALEDGER_RUNPOD_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET_KEY,
    }


def test_no_secret_in_error_bodies_the_error_log_or_command_output(
    make_server: ServerFactory, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    server = make_server(extra_env=_secret_env(s3_faulty_endpoint))
    texts, statuses = _provoke(server, s3_faulty_endpoint)
    assert (
        statuses["sync: wrong token"] == statuses["sync: token prefix"] == statuses["sync: token + 1"] == 401
    )
    assert statuses["webhook: prefix"] == statuses["webhook: api token"] == statuses["webhook: none"] == 401
    assert statuses["start: RunPod 401"] == 502
    assert statuses["sync: InvalidAccessKeyId"] == statuses["sync: SignatureDoesNotMatch"] == 502
    assert statuses["sync: SlowDown"] == 502
    entry = server.entry(1, "V2")
    assert entry["status"] == "failed" and "401" in entry["error"], entry

    # The same failures from the command line, and a database URL with a password that fails.
    s3_faulty_endpoint.fail_next(
        10, status=403, code="InvalidAccessKeyId", message=f"Key {AWS_ACCESS_KEY} / {AWS_SECRET_KEY}"
    )
    outputs = [server.cli("sync"), server.cli("reconcile", "--older-than", "0s")]
    s3_faulty_endpoint.heal()
    unreachable = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:9/test"
    outputs.append(server.cli("sync", env={"LORALEDGER_DATABASE_URL": unreachable}, timeout=60))
    assert [result.returncode for result in outputs] == [1, 0, 1], [r.stderr[-500:] for r in outputs]
    assert outputs[0].stderr.startswith("error: S3 listing") and "Traceback" not in outputs[0].stderr

    answered = "\n".join(texts)
    printed = "\n".join(result.stdout + result.stderr for result in outputs)
    assert _leaks(answered) == [], "a secret in an answer"
    assert _leaks(printed) == [], "a secret in a command's output"
    assert _leaks(server.stderr_text()) == [], "a secret in the server's error log"
    assert _leaks(server.file(1).read_text()) == []
    figures(
        "secrets in answers and logs",
        requests=len(texts),
        commands=len(outputs),
        secrets_checked=len(SECRETS),
        statuses=dict(sorted({str(s): list(statuses.values()).count(s) for s in statuses.values()}.items())),
        leaks=0,
    )


def test_an_unreachable_database_is_a_one_line_error_from_every_command(make_server: ServerFactory) -> None:
    server = make_server(start=False)
    unreachable = {"LORALEDGER_DATABASE_URL": f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:9/test"}
    results = {command[0]: server.cli(*command, env=unreachable, timeout=60) for command in (("sync",),)}
    for result in results.values():
        assert _leaks(result.stdout + result.stderr) == []
    explained = {
        name: result.stderr.strip().splitlines()
        for name, result in results.items()
        if result.returncode != 1 or len(result.stderr.strip().splitlines()) != 1
    }
    assert explained == {}, {name: lines[-1:] for name, lines in explained.items()}


def test_the_webhook_secret_never_appears_in_the_access_log(
    make_server: ServerFactory, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    server = make_server(extra_env=_secret_env(s3_faulty_endpoint))
    response = httpx.post(
        f"{server.base_url}/webhooks/runpod?token={WEBHOOK_SECRET}",
        json={"id": "a-e1", "status": "COMPLETED"},
    )
    assert response.status_code == 202
    server.stop()  # flushes the log
    assert _leaks(server.stdout_text() + server.stderr_text()) == []


def test_the_webhook_secret_is_required_and_an_empty_one_is_no_secret(make_server: ServerFactory) -> None:
    """Unset (covered in tests/e2e/test_webhook_guards.py) or empty: webhooks are refused, nothing
    is recorded, and a training cannot be started (RunPod could not call back)."""
    answers = {}
    for label, env, unset in (
        ("empty", {"LORALEDGER_WEBHOOK_SECRET": ""}, ()),
        ("unset", {}, ("LORALEDGER_WEBHOOK_SECRET",)),
    ):
        server = make_server(extra_env=env, unset=unset)
        for token in ("", "x", "None", "null"):
            response = httpx.post(server.webhook_url(token), json={"id": "a-e1", "status": "COMPLETED"})
            answers[f"{label} ?token={token}"] = response.status_code
        no_query = httpx.post(
            f"{server.base_url}/webhooks/runpod", json={"id": "a-e1", "status": "COMPLETED"}
        )
        answers[f"{label} no token"] = no_query.status_code
        start = server.start_training(1, "V1")
        answers[f"{label} start"] = start.status_code
        assert "LORALEDGER_WEBHOOK_SECRET" in start.text, start.text
        assert server.stub.jobs == {} and server.document_bytes(1) is None
    assert set(answers.values()) == {503}, answers


@pytest.mark.parametrize("name", ["require_api_token", "runpod_webhook"])
def test_tokens_are_compared_in_constant_time(name: str) -> None:
    """The check that guards each secret calls `secrets.compare_digest` (or hmac's), and nothing in
    api/ compares a secret with `==`, `!=` or `in`."""
    source = (ROOT / "api" / "http.py").read_text()
    tree = ast.parse(source)
    function = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
    )
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("compare_digest")
    ]
    assert calls, f"{name} does not use compare_digest"
    for path in sorted((ROOT / "api").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
            ):
                text = ast.unparse(node)
                assert "get_secret_value" not in text and "api_token" not in text.replace(
                    "api_token is None", ""
                ), f"{path.name}: {text}"
