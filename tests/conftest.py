"""Shared fixtures: each real outside part lives in its own module under tests/support/."""

pytest_plugins = [
    "tests.support.s3_server",
    "tests.support.s3_queue",
    "tests.support.runpod_stub",
    "tests.support.stores",
    "tests.support.server",
]
