"""Settings and logging as the real `loraledger` command meets them.

A setting whose value cannot be used stops every command before it does anything: one line on
stderr naming the environment variable (never pydantic's field name), exit 2. Logs go to stderr in
the format `LORALEDGER_LOG_FORMAT` chose; stdout is the command's output only. Data printed for
people or tools is never read as rich markup or emoji codes.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loraledger.adapters.store import postgres_connection, store_env
from loraledger.api.bootstrap import open_service
from loraledger.api.settings import Settings, SettingsError, load_settings, unknown_settings
from tests.integration.test_cli import (
    DOCUMENT,
    Cli,
    kept_backups,
    make_cli,
    one_line,
    owned_field_edited,
    write_document,
)
from tests.support.server import free_port
from tests.support.stores import drop_schema, postgres_url

JOB_ID = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
MARKUP = ":smile: [bold]x[/bold] [red]y :thumbs_up:"
JSON_LINE_KEYS = {"time", "level", "logger", "message"}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def legacy_file(cli: Cli, folder: str = "1_ink", description: str = "more steps") -> Path:
    entry = {
        "id": JOB_ID,
        "name": "V8",
        "description": description,
        "timestamp": "2025-10-13T19:36:17.724Z",
        "parameters": {},
        "status": "pending",
    }
    return write_document(cli.styles / folder / DOCUMENT, {"versions": [entry]})


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as one JSON object (fails on the first line that is not)."""
    parsed = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict) and set(entry) >= JSON_LINE_KEYS, line
        parsed.append(entry)
    return parsed


# --------------------------------------------------------------------------- bad settings


BAD_SETTINGS = {
    "LORALEDGER_RECONCILE_AFTER": ("1hour", "15m, 2h"),
    "LORALEDGER_RECONCILE_GRACE": ("1hour", "15m, 2h"),  # the old name, still read
    "LORALEDGER_SYNC_EVERY": ("hourly", "15m, 2h"),
    "LORALEDGER_RECONCILE_EVERY": ("-5m", "15m, 2h"),
    "LORALEDGER_S3_EVENTS_QUEUE_URL": ("sqs/queue", "http:// or https://"),
    "LORALEDGER_RUNPOD_TIMEOUT": ("abc", "number"),
    "LORALEDGER_WEBHOOK_MAX_BYTES": ("-1", "greater than 0"),
    "LORALEDGER_RUNPOD_ATTEMPTS": ("0", "greater than or equal to 1"),
    "LORALEDGER_S3_MAX_ATTEMPTS": ("many", "integer"),
    "LORALEDGER_LOG_FORMAT": ("xml", "'text' or 'json'"),
    "LORALEDGER_LOG_LEVEL": ("loud", "DEBUG, INFO, WARNING"),
    "LORALEDGER_DATABASE_URL": ("mysql://db/ledger", "sqlite:///PATH or postgresql://"),
    "LORALEDGER_OUTPUT_LAYOUT": ("/srv/{style_id}.json", "relative to the output directory"),
    "LORALEDGER_OUTPUT_FALLBACK": ("data/training_versions.json", "has no {style_id}"),
    "LORALEDGER_RUNPOD_BASE_URL": ("api.runpod.ai/v2", "http:// or https:// URL"),
    "LORALEDGER_PUBLIC_URL": ("ftp://ledger.example", "http:// or https:// URL"),
    "LORALEDGER_S3_ENDPOINT_URL": ("http://:9000", "with a host"),
    "LORALEDGER_LORA_URL_BASE": ("https://cdn.example:port/", "http:// or https:// URL"),
    "LORALEDGER_RUNPOD_ENDPOINT_ID": ("abc/../x", "1-128 of A-Z"),
    "LORALEDGER_BODY_READ_TIMEOUT": ("0", "greater than 0"),
    "LORALEDGER_MAX_BODY_BYTES": ("1MB", "integer"),
}


@pytest.mark.parametrize("variable", BAD_SETTINGS)
def test_a_bad_setting_is_refused_in_one_line_naming_the_variable_before_anything_runs(
    cli: Cli, variable: str
) -> None:
    value, accepted = BAD_SETTINGS[variable]

    result = cli.run("rebuild", **{variable: value})

    assert result.returncode == 2, (result.stdout, result.stderr)
    line = one_line(result.stderr)
    assert line.startswith(f"error: {variable}: "), line
    assert accepted in line
    assert variable.removeprefix("LORALEDGER_").lower() not in line  # not pydantic's field name
    assert result.stdout == ""
    assert not cli.db_path.parent.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["sync"],
        ["rebuild"],
        ["history", "1", "V8", "--json"],
        ["replay", "--until", "2025-01-01T00:00:00Z", "--out", "replayed"],
        ["import", "styles"],
        ["import", "styles", "--dry-run"],
        ["doctor", "styles"],
        ["reconcile"],
        ["serve"],
    ],
    ids=lambda args: " ".join(args),
)
def test_every_command_refuses_a_bad_duration_when_it_starts(cli: Cli, args: list[str]) -> None:
    legacy_file(cli)
    if args == ["serve"]:
        args = ["serve", "--port", str(free_port())]

    result = cli.run(*args, LORALEDGER_RECONCILE_GRACE="1hour")

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert one_line(result.stderr) == (
        "error: LORALEDGER_RECONCILE_GRACE: duration '1hour' is not like 15m, 2h, 90s, 1d or 1h30m"
    )
    assert not cli.db_path.parent.exists()


def test_an_unknown_loraledger_variable_is_a_warning_naming_the_closest_setting(cli: Cli) -> None:
    legacy_file(cli)

    result = cli.run("doctor", "styles", LORALEDGER_LOG_LEVLE="DEBUG", LORALEDGER_TEST_POSTGRES_URL="x")

    # doctor ran (exit 1: the file's V8 has been pending for longer than the reconcile delay); a bad
    # setting would have stopped it with exit 2.
    assert result.returncode == 1, (result.stdout, result.stderr)
    line = one_line(result.stderr)
    assert "WARNING" in line and "LORALEDGER_LOG_LEVLE is not a loraledger setting" in line, line
    assert line.endswith("did you mean LORALEDGER_LOG_LEVEL?"), line
    assert "TEST_POSTGRES" not in result.stderr  # the test suite's own variables are no typo


def test_unknown_variables_far_from_every_setting_are_named_without_a_guess() -> None:
    warnings = unknown_settings({"LORALEDGER_ZZZ": "1", "LORALEDGER_LOG_FORMAT": "json", "PATH": "/bin"})

    assert warnings == ["LORALEDGER_ZZZ is not a loraledger setting and is ignored"]


def test_several_bad_settings_are_named_together_in_one_line(cli: Cli) -> None:
    result = cli.run("sync", LORALEDGER_RUNPOD_TIMEOUT="abc", LORALEDGER_WEBHOOK_MAX_BYTES="-1")

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "LORALEDGER_RUNPOD_TIMEOUT: " in line and "LORALEDGER_WEBHOOK_MAX_BYTES: " in line


def test_reconcile_after_is_read_under_its_new_and_its_old_name_and_the_new_one_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [k for k in os.environ if k.startswith("LORALEDGER_")]:
        monkeypatch.delenv(name)
    assert Settings(_env_file=None).effective_reconcile_after == timedelta(minutes=15)  # CONTRACT §9

    monkeypatch.setenv("LORALEDGER_RECONCILE_GRACE", "0s")
    assert Settings(_env_file=None).effective_reconcile_after == timedelta(0)

    monkeypatch.setenv("LORALEDGER_RECONCILE_AFTER", "1h30m")
    assert Settings(_env_file=None).effective_reconcile_after == timedelta(minutes=90)

    monkeypatch.setenv("LORALEDGER_RECONCILE_GRACE", "not a duration")  # ignored: the new name is set
    assert load_settings(_env_file=None).effective_reconcile_after == timedelta(minutes=90)

    monkeypatch.setenv("LORALEDGER_RECONCILE_AFTER", "90 minutes")
    with pytest.raises(SettingsError, match=r"^LORALEDGER_RECONCILE_AFTER: duration '90 minutes'"):
        load_settings(_env_file=None)


def test_reconcile_without_runpod_settings_names_what_reconcile_needs(cli: Cli) -> None:
    result = cli.run("reconcile")

    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "LORALEDGER_RUNPOD_ENDPOINT_ID" in line and "reconcile" in line
    assert "start" not in line


# --------------------------------------------------------------------------- logging


def _hand_edited_style(cli: Cli) -> Path:
    """A style whose file had a field the service owns changed by hand since the ledger wrote it:
    rebuild refuses that change and keeps a backup."""
    path = legacy_file(cli)
    cli.ok("import", str(cli.styles))
    for old in kept_backups(cli):  # the import's own copy of the legacy file
        old.unlink()
    path.write_text(owned_field_edited(path.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def test_a_cli_warning_goes_to_stderr_as_one_json_object_per_line(cli: Cli) -> None:
    _hand_edited_style(cli)

    result = cli.run("rebuild", LORALEDGER_LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    (backup,) = kept_backups(cli)
    assert result.stdout == "wrote 1 style: 1\n"  # the warning is not output
    (warning,) = json_lines(result.stderr)
    assert warning["level"] == "WARNING"
    assert warning["logger"] == "loraledger.projections.writer"
    assert warning["backup"] == str(backup)  # an `extra=` field
    assert backup.name in warning["message"]
    assert warning["time"].endswith("Z")


def test_a_cli_warning_goes_to_stderr_as_text_by_default(cli: Cli) -> None:
    _hand_edited_style(cli)

    result = cli.run("rebuild")

    assert result.returncode == 0, result.stderr
    (backup,) = kept_backups(cli)
    assert backup.name not in result.stdout
    line = one_line(result.stderr)
    assert " WARNING loraledger.projections.writer: " in line and backup.name in line


def test_log_level_error_keeps_cli_warnings_out(cli: Cli) -> None:
    _hand_edited_style(cli)

    result = cli.run("rebuild", LORALEDGER_LOG_LEVEL="error")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# --------------------------------------------------------------------------- data is not markup


def test_history_json_prints_emoji_codes_and_markup_in_the_data_unchanged(cli: Cli) -> None:
    legacy_file(cli, description=MARKUP)
    cli.ok("import", str(cli.styles))

    result = cli.run("history", "1", "V8", "--json", LORALEDGER_LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)  # stdout is the JSON and nothing else
    (imported,) = [e for e in answer["events"] if e["type"] == "Imported"]
    assert imported["data"]["entry"]["description"] == MARKUP


def test_human_output_prints_emoji_codes_and_markup_in_the_data_unchanged(cli: Cli) -> None:
    folder = "1_:smile:[bold]x"  # the source path shows in history and import output
    legacy_file(cli, folder=folder)

    imported = cli.ok("import", str(cli.styles))
    history = cli.ok("history", "1", "V8")
    doctor = cli.run("doctor", str(cli.styles))  # exit 1: it names the long-pending V8
    assert doctor.returncode == 1, (doctor.stdout, doctor.stderr)

    for result in (imported, history, doctor):
        assert folder in result.stdout, result.stdout
        assert "\N{SMILING FACE WITH OPEN MOUTH}" not in result.stdout


# --------------------------------------------------------------------------- PostgreSQL URL options


@pytest.fixture
def postgres_with_options() -> Any:
    base = postgres_url()
    if base is None:
        pytest.skip("LORALEDGER_TEST_POSTGRES_URL is not set")
    separator = "&" if "?" in base else "?"
    url = (
        f"{base}{separator}sslmode=disable&application_name=loraledger-test&schema=t_{uuid.uuid4().hex[:12]}"
    )
    yield url
    drop_schema(url)


@pytest.mark.postgres
def test_libpq_options_of_the_database_url_reach_every_connection(postgres_with_options: str) -> None:
    url = postgres_with_options
    service = open_service(Settings(_env_file=None, database_url=url))
    try:
        with service.ledger.store.recorder.datastore.get_connection() as connection:  # the store's own pool
            row = connection.execute(
                "SELECT application_name, ssl FROM pg_stat_activity JOIN pg_stat_ssl USING (pid) "
                "WHERE pid = pg_backend_pid()"
            ).fetchone()
        assert row == {"application_name": "loraledger-test", "ssl": False}
        with postgres_connection(url) as connection:
            assert connection.execute("SHOW application_name").fetchone() == ("loraledger-test",)
        assert store_env(url)["POSTGRES_SCHEMA"].startswith("t_")  # `schema` stays ours
    finally:
        service.close()


@pytest.mark.postgres
def test_sslmode_require_against_a_server_without_ssl_is_a_one_line_error(cli: Cli) -> None:
    base = postgres_url()
    if base is None:
        pytest.skip("LORALEDGER_TEST_POSTGRES_URL is not set")
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}sslmode=require&schema=t_{uuid.uuid4().hex[:12]}"

    for args in (["rebuild"], ["serve", "--port", str(free_port())]):
        result = cli.run(*args, LORALEDGER_DATABASE_URL=url)

        assert result.returncode == 1, (args, result.stdout, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("error: LORALEDGER_DATABASE_URL: ") and "SSL" in line, line


def test_an_unknown_option_in_the_postgresql_url_names_the_setting(cli: Cli) -> None:
    result = cli.run("rebuild", LORALEDGER_DATABASE_URL="postgresql://u@127.0.0.1:1/db?sslmod=require")

    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("error: LORALEDGER_DATABASE_URL: ") and "sslmod" in line
