"""loraledger: an event-sourced record of LoRA training versions.

Installed as one import name: `loraledger.domain`, `loraledger.application`, `loraledger.adapters`,
`loraledger.projections` and `loraledger.api` map onto the top-level folders of the repository
(see `[tool.setuptools.package-dir]` in pyproject.toml).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loraledger")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
