"""loraledger: an event-sourced record of LoRA training versions.

Installed as one import name: `loraledger.domain`, `loraledger.application`, `loraledger.adapters`,
`loraledger.projections` and `loraledger.api` map onto the top-level folders of the repository
(see `[tool.setuptools.package-dir]` in pyproject.toml).
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # `__version__` is read from the installed metadata when asked for: importing
    # importlib.metadata costs every command's start otherwise.
    if name != "__version__":
        raise AttributeError(f"module 'loraledger' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loraledger")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"
