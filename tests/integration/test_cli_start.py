"""`loraledger --help` and `--version` start without the store, the clients or the settings model."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from tests.support.commands import loraledger_command

HEAVY = ("eventsourcing", "boto3", "botocore", "httpx", "fastapi", "uvicorn", "pydantic_settings", "rich")


def test_version_prints_the_installed_version() -> None:
    done = subprocess.run(loraledger_command("--version"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"loraledger {version('loraledger')}\n"


def test_importing_the_cli_imports_none_of_the_heavy_libraries() -> None:
    probe = f"import sys, loraledger.api.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_help_lists_the_commands() -> None:
    done = subprocess.run(loraledger_command("--help"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("sync", "serve", "import", "rebuild", "history"):
        assert command in done.stdout
