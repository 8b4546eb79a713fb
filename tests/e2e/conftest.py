"""End-to-end tier: the real `loraledger serve` process, talked to over HTTP.

Each test gets its own server process (fixture `server`, or `make_server(...)` for a custom
environment) on a free port, with a tmp SQLite file, a tmp output folder, the moto S3 server and
the RunPod stub. RunPod's webhooks come back to the process for real: the stub POSTs to the
`?token=` URL the service sent with `/run`.

The harness lives in `tests/support/server.py` (shared with tests/reliability; its fixtures are
registered by tests/conftest.py). At teardown the process gets SIGTERM (then SIGKILL), and the
test fails if its stderr shows a traceback. On a failure pytest shows the server's stderr.
"""

from __future__ import annotations

from tests.support.server import (
    FILE_FRESHNESS,
    FIXTURES,
    HTTP_TIMEOUT,
    S3_PREFIX,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    TRACEBACK_MARKER,
    WEBHOOK_SECRET,
    LedgerServer,
    PortTaken,
    ServerFactory,
    cli_command,
    free_port,
    load_fixture,
    serve_command,
    traceback_excerpt,
)

__all__ = [
    "FILE_FRESHNESS",
    "FIXTURES",
    "HTTP_TIMEOUT",
    "S3_PREFIX",
    "STARTUP_TIMEOUT",
    "STOP_TIMEOUT",
    "TRACEBACK_MARKER",
    "WEBHOOK_SECRET",
    "LedgerServer",
    "PortTaken",
    "ServerFactory",
    "cli_command",
    "free_port",
    "load_fixture",
    "serve_command",
    "traceback_excerpt",
]
