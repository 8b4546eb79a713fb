"""schemathesis over the live server's OpenAPI schema: every route, examples, coverage and fuzzing
phases, positive and negative data, with the API token and the webhook secret set so authorised
calls get through. The checks that must hold: `not_a_server_error` (no 5xx, ever), and every answer
is documented: its status, its content type and its body's shape (api/schemas.py).

The naming parser and the matching rules have their own property-based tests (hypothesis) in
tests/unit/test_naming.py and tests/unit/test_matching.py; they are not repeated here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import figures
from tests.support.server import WEBHOOK_SECRET, ServerFactory

API_TOKEN = "schemathesis-api-token-7d21"
MAX_EXAMPLES = 100


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer_on_any_route(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server(extra_env={"LORALEDGER_API_TOKEN": API_TOKEN})
    server.client.headers["Authorization"] = f"Bearer {API_TOKEN}"
    server.started_job(1, "V9", parameters={"learning_rate": 0.0003})  # something to read and patch
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[parameters]\n"query.token" = "{WEBHOOK_SECRET}"\n',
    )
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--header",
        f"Authorization: Bearer {API_TOKEN}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--seed",
        "20251014",
        "--workers",
        "1",  # several workers parse hypothesis lambdas concurrently, which CPython 3.11 mishandles
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    began = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    elapsed = time.monotonic() - began
    output = result.stdout + result.stderr
    statuses = _response_statuses(report)
    server_errors = {code: n for code, n in statuses.items() if code >= 500}
    assert result.returncode == 0, output[-6000:]
    assert server_errors == {}, output[-6000:]
    assert sum(statuses.values()) > 100, output[-3000:]
    assert server.healthy()
    figures(
        "schemathesis (all routes)",
        requests=sum(statuses.values()),
        status_codes=dict(sorted(statuses.items())),
        server_errors=0,
        seconds=f"{elapsed:.0f}",
    )


def _response_statuses(report: Path) -> dict[int, int]:
    """Status code -> count over every response recorded in schemathesis' ndjson report."""
    counts: dict[int, int] = {}

    def walk(value: object) -> None:
        if isinstance(value, dict):
            response = value.get("response")
            if isinstance(response, dict) and isinstance(response.get("status_code"), int):
                code = response["status_code"]
                counts[code] = counts.get(code, 0) + 1
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    if report.exists():
        for line in report.read_text().splitlines():
            if line.strip():
                walk(json.loads(line))
    return counts
