"""Installed, the project is one import name (`loraledger.…`), and its commands never come from PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.commands import console_script, loraledger_command

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_installed_project_is_importable_only_under_its_own_name(tmp_path: Path) -> None:
    assert _python("import loraledger.api.cli, loraledger.domain.naming", tmp_path).returncode == 0
    for bare in ("api", "domain", "application", "adapters", "projections"):
        result = _python(f"import {bare}", tmp_path)
        assert result.returncode != 0, f"`import {bare}` works after install: {result.stdout}"
        assert "ModuleNotFoundError" in result.stderr


def test_module_entry_point_runs_the_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        loraledger_command("--help"), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


def test_console_script_is_installed_beside_the_interpreter(tmp_path: Path) -> None:
    script = console_script()
    assert script.is_file(), f"no console script at {script}: is the project installed in this environment?"
    result = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


def _check_fresh(path_dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])}
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "check-fresh")], env=env, capture_output=True, text=True, timeout=60
    )


def test_ci_refuses_a_machine_with_a_stray_console_script(tmp_path: Path) -> None:
    stray = tmp_path / "bin"
    stray.mkdir()
    (stray / "loraledger").write_text("#!/bin/sh\nexit 0\n")
    (stray / "loraledger").chmod(0o755)
    result = _check_fresh([stray])
    assert result.returncode == 1
    assert f"'loraledger' resolves to {stray / 'loraledger'}" in result.stderr


def test_ci_accepts_a_machine_without_a_stray_install(tmp_path: Path) -> None:
    result = _check_fresh([tmp_path])
    assert result.returncode == 0, result.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        line for line in readme.splitlines() if line.startswith("python3 -m venv .venv") and "[test]" in line
    ]
    assert len(commands) == 1, f"the README should give one test command, found {commands}"
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI installs quietly; apart from pip's -q the command is the README's, character for character.
    assert commands[0].replace("pip install -e", "pip install -q -e") in ci_run.splitlines()
