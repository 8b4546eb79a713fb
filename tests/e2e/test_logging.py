"""The server's log: `LORALEDGER_LOG_FORMAT=json` makes every stderr line one JSON object, uvicorn's
own lines and access log included, with the webhook secret redacted from logged paths."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import WEBHOOK_SECRET, LedgerServer, ServerFactory


def _stderr_lines(server: LedgerServer) -> list[str]:
    lines = []
    for path in sorted(server.workdir.glob("server-*.stderr")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


def test_serve_with_json_logs_writes_one_json_object_per_stderr_line(make_server: ServerFactory) -> None:
    server = make_server(extra_env={"LORALEDGER_LOG_FORMAT": "json"})
    job_id = server.started_job(1, "V9")
    assert server.stub.complete(job_id).status_codes == [200]  # RunPod's webhook, with ?token=
    assert server.client.get("/styles/1/versions/V99/history").status_code == 404
    assert server.post_webhook({"id": "x"}, token="wrong-token").status_code in (401, 422)
    server.restart(extra_env={"LORALEDGER_WEBHOOK_SECRET": ""})  # unset: a warning of ours at startup
    server.stop()

    lines = _stderr_lines(server)
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines]  # fails on any other line
    assert entries and all(isinstance(entry, dict) for entry in entries)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert all(entry["time"].endswith("Z") for entry in entries)
    loggers = {entry["logger"] for entry in entries}
    assert {"uvicorn.error", "uvicorn.access", "loraledger.api.http"} <= loggers, loggers
    webhooks = [
        e["message"] for e in entries if e["logger"] == "uvicorn.access" and "/webhooks/" in e["message"]
    ]
    assert len(webhooks) == 2, webhooks
    assert all("token=***" in message for message in webhooks), webhooks
    assert not any(WEBHOOK_SECRET in line or "wrong-token" in line for line in lines)
    (warning,) = [e for e in entries if e["logger"] == "loraledger.api.http"]
    assert warning["level"] == "WARNING" and "LORALEDGER_WEBHOOK_SECRET" in warning["message"]
    assert [path.read_bytes() for path in server.workdir.glob("server-*.stdout")] == [b"", b""]


def test_serve_refuses_to_start_on_a_bad_setting_in_one_line(make_server: ServerFactory) -> None:
    server = make_server(extra_env={"LORALEDGER_WEBHOOK_MAX_BYTES": "-1"}, start=False)

    result = server.cli("serve", "--host", "127.0.0.1", "--port", str(server.port), timeout=20)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "error: LORALEDGER_WEBHOOK_MAX_BYTES: Input should be greater than 0"
    ]
