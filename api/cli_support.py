"""What every `loraledger` command shares: its two consoles, its one-line failures, its settings and
service, the parsers of its arguments, and its output (lines for people, or JSON with `--json`).

Exit status: 0 on success, 1 on a failure explained in one line, 2 on bad usage (a setting
whose value cannot be used included). Logs go to stderr; stdout is the command's output only.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from loraledger.adapters.redaction import escape_controls, json_for_terminal, redact
from loraledger.domain.errors import LedgerError
from loraledger.domain.naming import NameRejected, parse_actor_id, parse_style_id, parse_version_name
from loraledger.domain.subjects import ACTOR, STYLE, Subject, subject_kind
from loraledger.domain.times import parse_time

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from loraledger.api.facade import Service
    from loraledger.api.settings import Settings

# What a command needs beyond parsing (the store, the clients, pydantic, rich) is imported when it
# is first used: `--help` and `--version` start without them.

JsonOption = Annotated[
    bool, typer.Option("--json", help="print the result as JSON on stdout (and nothing else there)")
]


class LazyConsole:
    """A rich Console made at its first use."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


# Printed text is data (descriptions, paths): no rich markup, emoji codes or highlighting in it.
out = LazyConsole(highlight=False, markup=False, emoji=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
T = TypeVar("T")
log = logging.getLogger("loraledger.api.cli")


@cache
def explained_errors() -> tuple[type[BaseException], ...]:
    """Failures a command explains in one line (exit 1) instead of a traceback."""
    from eventsourcing.persistence import PersistenceError

    from loraledger.adapters.runpod import RunPodError
    from loraledger.adapters.s3_listing import S3ListingError
    from loraledger.adapters.store import StoreConfigError
    from loraledger.api.settings import MissingSetting
    from loraledger.domain.legacy import LegacyDocumentError

    return (
        PersistenceError,
        MissingSetting,
        LedgerError,
        S3ListingError,
        RunPodError,
        StoreConfigError,
        NameRejected,
        LegacyDocumentError,
        FileNotFoundError,
        ValueError,
    )


def say(line: str) -> None:
    """One line for a person: secrets redacted, control characters (from S3 keys, files, RunPod)
    shown as escapes instead of acted on by the terminal."""
    out.print(escape_controls(redact(line)), markup=False)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {escape_controls(redact(message))}", markup=False)
    raise typer.Exit(code)


@contextmanager
def explained() -> Iterator[None]:
    from eventsourcing.persistence import PersistenceError

    try:
        yield
    except PersistenceError as error:
        fail(f"the event store at LORALEDGER_DATABASE_URL did not answer ({type(error).__name__})")
    except explained_errors() as error:
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)


def settings_for_command(**overrides: Any) -> Settings:
    """The settings, with logging set up from them; a value that cannot be used stops the command
    before it does anything (one line naming the variable, exit 2)."""
    from loraledger.api.logging_setup import configure_logging
    from loraledger.api.settings import SettingsError, load_settings, unknown_settings

    try:
        settings = load_settings(**overrides)
    except SettingsError as error:
        fail(str(error), 2)
    configure_logging(settings.log_format, settings.log_level)
    for warning in unknown_settings():
        log.warning("%s", warning)
    return settings


@contextmanager
def service(create_store: bool = True, **overrides: Any) -> Iterator[Service]:
    from loraledger.api.bootstrap import open_service

    with explained():
        settings = settings_for_command(**overrides)
        svc = open_service(settings, create_store=create_store)
        try:
            yield svc
        finally:
            # Each kept backup was logged as a warning (stderr, in the log format): stdout is
            # the command's output only, JSON for `--json`.
            svc.close()


def parse_style(text: str) -> int:
    try:
        return parse_style_id(text)
    except NameRejected as rejected:
        raise typer.BadParameter(rejected.reason) from None


def parse_actor(text: str) -> int:
    try:
        return parse_actor_id(text)
    except NameRejected as rejected:
        raise typer.BadParameter(rejected.reason) from None


def parse_subject(text: str) -> Subject:
    """`style/1` or `actor/6` (CONTRACT §8); a bare number is a style."""
    kind_text, slash, id_text = text.rpartition("/")
    if not slash:
        return Subject(STYLE, parse_style(text))
    try:
        kind = subject_kind(kind_text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write a subject as style/<id> or actor/<id>") from None
    return Subject(kind, parse_actor(id_text) if kind == ACTOR else parse_style(id_text))


def parse_version(text: str) -> str:
    try:
        return parse_version_name(text)
    except NameRejected as rejected:
        raise typer.BadParameter(rejected.reason) from None


def parse_when(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO-8601 time") from None


def progress_bar(label: str) -> tuple[Progress | None, Callable[[int], None] | None]:
    if not sys.stdout.isatty():
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn(label), BarColumn(), TextColumn("{task.completed} objects"), TimeElapsedColumn()
    )
    task = progress.add_task(label, total=None)
    return progress, lambda n: progress.advance(task, n)


def print_json(data: Any) -> None:
    """The data as it is: not through rich, which rewrites `:smile:` and `[bold]`; JSON escapes
    whatever a terminal would act on, so nothing needs redacting or escaping here."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(json_for_terminal(text) + "\n")


def parse_json_object(text: str) -> dict[str, Any]:
    """A command-line argument that must be a JSON object (`-` reads it from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    try:
        value = json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object")
    return value
