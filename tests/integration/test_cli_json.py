"""`--json` on every command (stdout holds the JSON and nothing else), `--version` and shell
completion, through the real `loraledger` command on a SQLite store."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import DOCUMENT, Cli, before_file, make_cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def json_out(cli: Cli, *args: str, code: int = 0) -> Any:
    result = cli.run(*args, "--json")
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return json.loads(result.stdout)  # fails on anything but one JSON document


def test_each_command_prints_only_json_with_json(cli: Cli) -> None:
    before_file(cli)

    doctor = json_out(cli, "doctor", str(cli.styles), code=1)  # the "before" file has a duplicate
    assert doctor[0]["path"].endswith(DOCUMENT) and doctor[0]["problems"]
    dry = json_out(cli, "import", str(cli.styles), "--dry-run")
    assert dry[0]["refused"] is False and dry[0]["events"] > 0
    imported = json_out(cli, "import", str(cli.styles))
    assert imported[0]["style_id"] == 1 and imported[0]["merged"] == 1
    rebuilt = json_out(cli, "rebuild")
    assert list(rebuilt) == ["styles", "failed", "errors", "backups"] and rebuilt["styles"] == [1]
    history = json_out(cli, "history", "1", "V8")
    assert list(history) == ["style_id", "version", "events"]
    replayed = json_out(cli, "replay", "--until", "2999-01-01T00:00:00Z", "--out", "replayed")
    assert replayed["styles"] == [1] and replayed["out"] == "replayed"


def test_a_failure_with_json_leaves_stdout_empty_and_says_why_on_stderr(cli: Cli) -> None:
    result = cli.run("history", "1", "V8", "--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: style 1 has no version V8")


def test_version_prints_the_installed_version(cli: Cli) -> None:
    result = cli.run("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"loraledger {version('loraledger')}\n"


def test_shell_completion_script_is_printed_for_bash(cli: Cli) -> None:
    result = cli.run("--show-completion", "bash")

    assert result.returncode == 0, result.stderr
    assert "_LORALEDGER_COMPLETE=complete_bash" in result.stdout
    assert result.stdout.rstrip().endswith("loraledger")  # `complete ... loraledger`
