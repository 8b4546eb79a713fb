"""Logging, set up once per process from the settings (`LORALEDGER_LOG_FORMAT`, `LORALEDGER_LOG_LEVEL`).

Every module logs under `loraledger.<module>`; all of it goes to stderr (stdout is for command
output, which tools parse), as `text` for a terminal or `json` for pipelines: one JSON object per
line with `time` (UTC, ISO 8601), `level`, `logger`, `message` and any `extra=` fields. When
serving, uvicorn's loggers (its access log too, with the webhook secret redacted) go through the
same handler; other libraries' warnings as well, so a JSON log stays JSON throughout.
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "JsonFormatter",
    "QuietLivePolls",
    "RequestIdFilter",
    "TextFormatter",
    "configure_logging",
    "logging_config",
    "request_id_var",
]

# The HTTP request being served (api/operating.py sets it); its lines carry it as `request_id`.
request_id_var: ContextVar[str | None] = ContextVar("loraledger_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to each record logged while a request is served (uvicorn's access line too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class QuietLivePolls(logging.Filter):
    """An open page polls `/ui/live` twice a second: an answered poll is no line of the access log
    unless it logs DEBUG; a refused one (401, 422) still is."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and args[4] == 200:
            path = str(args[2])
            if path == "/ui/live" or path.startswith("/ui/live?"):
                return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


# Every LogRecord has these; anything else on a record came from `extra=`. uvicorn adds
# `color_message` (its message with terminal colour codes) to its own records: not data.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _utc_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (ASCII-escaped, so no line separator can hide inside)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <logger>: <message>`, then any traceback (`extra=` fields are for the
    JSON form: the message says it all to a person)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line += f" [request {request_id}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def logging_config(log_format: str, level: str, *, uvicorn: bool = False) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration; with `uvicorn`, also for uvicorn's loggers (it is
    handed to `uvicorn.run(log_config=…)`, which applies it in every worker process too)."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    loggers: dict[str, Any] = {"loraledger": {"level": level, "handlers": ["stderr"], "propagate": False}}
    # Every line goes out redacted: the access log prints request paths with their query (`?token=`),
    # and error texts may quote secrets back (adapters/redaction.py).
    filters: dict[str, Any] = {
        "request_id": {"()": "loraledger.api.logging_setup.RequestIdFilter"},
        "redact": {"()": "loraledger.adapters.redaction.RedactingLogFilter"},
        "live_polls": {"()": "loraledger.api.logging_setup.QuietLivePolls"},
    }
    if uvicorn:
        loggers |= {
            "uvicorn": {"level": level, "handlers": ["stderr"], "propagate": False},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {
                "level": level,
                "handlers": ["stderr"],
                "propagate": False,
                "filters": ["live_polls"],
            },
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"loraledger": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "filters": filters,
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "loraledger",
                "filters": ["request_id", "redact"],
            }
        },
        "loggers": loggers,
        # Other libraries: their warnings and errors only, in the same format.
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def configure_logging(log_format: str, level: str, *, uvicorn: bool = False) -> None:
    """Apply `logging_config`; Python warnings (`warnings.warn`) are logged the same way."""
    logging.config.dictConfig(logging_config(log_format, level, uvicorn=uvicorn))
    logging.captureWarnings(True)
