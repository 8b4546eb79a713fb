"""`loraledger start`, `annotate`, `sync` and `reconcile` mirror their routes: the same facade
method, the same answer with `--json`, against the store a running server shares."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import LedgerServer


def cli_json(server: LedgerServer, *args: str) -> Any:
    result = server.cli(*args, "--json")
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_start_then_annotate_on_the_command_line_answer_what_the_routes_answer(server: LedgerServer) -> None:
    started = cli_json(
        server,
        "start",
        "1",
        "--version-name",
        "V3",
        "--parameters",
        '{"max_train_steps": 10}',
        "--description",
        "from a script",
    )
    assert started["name"] == "V3" and started["status"] == "pending"
    assert started["parameters"] == {"max_train_steps": 10} and started["id"] in server.stub.jobs
    assert server.stub.complete(started["id"]).status_codes == [200]  # RunPod calls the server back

    annotated = cli_json(server, "annotate", "1", "V3", '{"isGood": true, "description": null}')

    assert annotated == server.entry(1, "V3")
    assert annotated["status"] == "completed" and annotated["isGood"] is True
    assert "description" not in annotated


def test_start_with_a_parameters_value_that_is_no_json_object_is_bad_usage(server: LedgerServer) -> None:
    result = server.cli("start", "1", "--parameters", "[1, 2]")

    assert result.returncode == 2 and result.stdout == ""
    assert "must be a JSON object" in result.stderr
    assert server.stub.jobs == {}


def test_sync_and_reconcile_with_json_print_the_routes_reports(server: LedgerServer) -> None:
    server.bucket.put(server.s3_key("style_4_vV1"))
    synced = cli_json(server, "sync")
    assert synced["created"] == 1 and synced["backups"] == []
    assert set(synced) >= {"scanned", "matched_pending", "matched_synced", "created", "unchanged", "skipped"}

    reconciled = cli_json(server, "reconcile", "--older-than", "0s")
    assert reconciled["checked"] == 0 and reconciled["errors"] == []
