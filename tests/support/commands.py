"""The project's own commands, reached through the interpreter running the tests.

Never through PATH: a stray global install of `loraledger` once kept CI green while a fresh clone
failed. `sys.executable -m loraledger` runs the same `loraledger.api.cli:main` as the console script,
from the environment the tests run in (a venv whose `bin/` is not on PATH included).
"""

from __future__ import annotations

import sys
from pathlib import Path


def loraledger_command(*args: str) -> list[str]:
    """`loraledger ARGS` as this interpreter's installed package runs it."""
    return [sys.executable, "-m", "loraledger", *args]


def console_script() -> Path:
    """The `loraledger` console script installed beside this interpreter (the venv's `bin/`)."""
    return Path(sys.executable).parent / "loraledger"
