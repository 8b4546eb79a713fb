"""Secrets: the webhook secret and the API token are compared in constant time, the webhook
secret is required, and no secret (API token, webhook secret, RunPod key, AWS keys, database
password) ever shows in a log line, an error body or a command's output, whatever goes wrong.
"""

from __future__ import annotations

import ast
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, unquote_plus

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


@pytest.mark.parametrize("name", ["require_api_token", "_webhook_payload"])
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


# --------------------------------------------------------------------------- every spelling

# A webhook secret with the characters that have their own escapes (`/`, `+`, space, `ü`, `&`, `=`).
SPELLED_SECRET = "wh/9b2d4e+SECRET ü&=x"
SPELLED_CORE = "9b2d4e"  # in every readable form of the secret, even a cut one
ENCODED = quote(SPELLED_SECRET, safe="")  # as it is in the webhook URL we send RunPod


def _every_byte(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)


def _json_unescape(text: str) -> str:
    text = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)
    return re.sub(r"\\+([\"/\\])", r"\1", text)


def _readings(text: str) -> set[str]:
    """`text` as a reader could decode it: URL-, form-, HTML- and JSON-unescaped, up to 3 times over."""
    forms = {text}
    for _ in range(3):
        forms |= {
            decoded
            for form in forms
            for decoded in (unquote(form), unquote_plus(form), html.unescape(form), _json_unescape(form))
        }
    return forms


def _revealed(text: str, *fragments: str) -> list[str]:
    """The fragments that some decoding of `text` shows."""
    readings = _readings(text)
    return [fragment for fragment in fragments if any(fragment in reading for reading in readings)]


def _run_url(body: str) -> str:
    webhook: str = json.loads(body)["webhook"]
    return webhook


# How RunPod (or a proxy before it) may quote the `/run` request back in a refusal.
REFUSALS: dict[str, Callable[[str], str] | None] = {
    "JSON quoting the body": None,
    "the body as is": lambda body: f"invalid request: {body}",
    "escaped slashes": lambda body: json.dumps({"error": body}).replace("/", "\\/"),
    "Go-style escapes": lambda body: (
        json.dumps({"error": body}).replace("&", "\\u0026").replace("=", "\\u003d")
    ),
    "the URL decoded": lambda body: f"webhook {unquote(_run_url(body))} unreachable",
    "name and every byte encoded": lambda body: (
        _run_url(body).split("?")[0] + "?tok%65n=" + _every_byte(SPELLED_SECRET)
    ),
    "lower-case hex after ;": lambda body: _run_url(body).split("?")[0] + "?x=1;token=" + _lower_hex(ENCODED),
    "HTML": lambda body: f"<p>bad webhook {html.escape(unquote(_run_url(body)))}</p>",
    "URL-encoded URL": lambda body: "bad " + quote(_run_url(body), safe=""),
}


def test_a_runpod_refusal_quoting_the_request_shows_no_secret_in_answers_files_history_or_logs(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        extra_env={"LORALEDGER_WEBHOOK_SECRET": SPELLED_SECRET, "LORALEDGER_RUNPOD_ATTEMPTS": "2"}
    )
    key_core = server.stub.api_key[-12:]
    answers: dict[str, httpx.Response] = {}
    for number, (case, render) in enumerate(REFUSALS.items(), start=1):
        server.stub.echo_next(1, 400, render=render)
        answers[case] = server.start_training(1, f"V{number}")
    # A 503 quoting the body is retried once (a log line), then given up on.
    server.stub.echo_next(2, 503)
    answers["503, retried"] = server.start_training(1, f"V{len(REFUSALS) + 1}")

    assert {case: answer.status_code for case, answer in answers.items()} == dict.fromkeys(answers, 502)
    names = [f"V{number}" for number in range(1, len(answers) + 1)]
    entries = [server.entry(1, name) for name in names]
    assert {entry["status"] for entry in entries} == {"failed"}
    assert all(("HTTP 400" in e["error"]) != ("HTTP 503" in e["error"]) for e in entries), entries
    assert "token=***" in entries[0]["error"], entries[0]["error"]  # still says what was refused
    histories = [server.history(1, name) for name in names]
    commands = [server.cli("history", "1", name) for name in names[:3]]
    commands.append(server.cli("history", "1", names[0], "--json"))
    assert [command.returncode for command in commands] == [0] * len(commands)
    file_text = server.file(1).read_text()
    server.stop()  # flushes the logs
    logs = server.stderr_text() + server.stdout_text()
    assert "retrying in" in logs  # the retry's log line was written, redacted

    places = {
        **{f"502 answer, {case}": answer.text for case, answer in answers.items()},
        "training_versions.json over HTTP": json.dumps(entries),
        "training_versions.json on disk": file_text,
        "history over HTTP": json.dumps(histories),
        "history commands": "\n".join(c.stdout + c.stderr for c in commands),
        "server log": logs,
    }
    leaks = {place: _revealed(text, SPELLED_CORE, key_core) for place, text in places.items()}
    assert {place: found for place, found in leaks.items() if found} == {}
    figures(
        "RunPod refusals quoting the request",
        spellings=len(answers),
        places_checked=len(places),
        leaks=0,
    )


# The exact `token` parameter, given once, is the only spelling that counts (CONTRACT §4).
WEBHOOK_QUERIES = {
    "?token=, URL-encoded": (f"token={ENCODED}", 202),
    "?token=, form-encoded": (f"token={quote_plus(SPELLED_SECRET)}", 202),
    "?token=, every byte encoded": (f"token={_every_byte(SPELLED_SECRET)}", 202),
    "?token=, lower-case hex": (f"token={_lower_hex(ENCODED)}", 202),
    "encoded name": (f"tok%65n={ENCODED}", 401),
    "upper-case name": (f"TOKEN={ENCODED}", 401),
    "after ;": (f"x=1;token={ENCODED}", 401),
    "twice": (f"token={ENCODED}&token={ENCODED}", 401),
    "and an encoded twin": (f"token={ENCODED}&tok%65n={ENCODED}", 401),
    "an encoded twin first": (f"tok%65n=nope&token={ENCODED}", 401),
    "wrong, then right in a second parameter": (f"token=nope&token={ENCODED}", 401),
    "the secret undecoded": (f"token={SPELLED_SECRET}", 401),  # `+` and ` `, `&`: not the secret
}


def test_the_webhook_token_counts_only_as_token_given_once_and_no_spelling_shows_in_the_access_log(
    make_server: ServerFactory,
) -> None:
    server = make_server(extra_env={"LORALEDGER_WEBHOOK_SECRET": SPELLED_SECRET})
    statuses = {}
    for case, (query, _) in WEBHOOK_QUERIES.items():
        response = httpx.post(
            f"{server.base_url}/webhooks/runpod?{query}", json={"id": "a-e1", "status": "COMPLETED"}
        )
        statuses[case] = response.status_code
        assert _revealed(response.text, SPELLED_CORE) == [], response.text
    server.stop()  # flushes the access log

    assert statuses == {case: status for case, (_, status) in WEBHOOK_QUERIES.items()}
    access = server.stderr_text()  # every log line, the access log included, goes to stderr
    assert access.count("POST /webhooks/runpod?") == len(WEBHOOK_QUERIES), access
    assert "tok%65n=***" in access and "x=1;token=***" in access
    assert _revealed(access + server.stderr_text(), SPELLED_CORE) == []
