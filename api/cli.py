"""`loraledger` on the command line (CONTRACT §6): parse, call one facade method, render.

Exit status: 0 on success, 1 on a failure explained in one line, 2 on bad usage (a setting
whose value cannot be used included). Logs go to stderr; stdout is the command's output only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from loraledger.adapters.redaction import escape_controls, install_log_redaction, json_for_terminal, redact
from loraledger.api.cli_start import LazyConsole, explained_errors
from loraledger.domain.naming import NameRejected, parse_style_id, parse_version_name
from loraledger.domain.parse_duration import parse_duration
from loraledger.domain.times import parse_time

if TYPE_CHECKING:
    from rich.progress import Progress

    from loraledger.api.facade import Service
    from loraledger.api.settings import Settings

# `--help` and `--version` import no more than typer and the few modules above: the store, the
# clients, pydantic and rich are imported by the commands that use them (CLI start is paid by
# every command, and by every script that runs one).

app = typer.Typer(
    name="loraledger",
    help="Event-sourced record of LoRA training versions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rendering it with rich costs more than the rest of the process start.
    rich_markup_mode=None,
)
T = TypeVar("T")


# Printed text is data (descriptions, paths): no rich markup, emoji codes or highlighting in it.
out = LazyConsole(highlight=False, markup=False, emoji=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        import loraledger

        sys.stdout.write(f"loraledger {loraledger.__version__}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Event-sourced record of LoRA training versions."""


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
    from loraledger.api.settings import SettingsError, load_settings

    try:
        settings = load_settings(**overrides)
    except SettingsError as error:
        fail(str(error), 2)
    configure_logging(settings.log_format, settings.log_level)
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


def _style(text: str) -> int:
    try:
        return parse_style_id(text)
    except NameRejected as rejected:
        raise typer.BadParameter(rejected.reason) from None


def _version(text: str) -> str:
    try:
        return parse_version_name(text)
    except NameRejected as rejected:
        raise typer.BadParameter(rejected.reason) from None


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO-8601 time") from None


def _progress(label: str) -> tuple[Progress | None, Callable[[int], None] | None]:
    if not sys.stdout.isatty():
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn(label), BarColumn(), TextColumn("{task.completed} objects"), TimeElapsedColumn()
    )
    task = progress.add_task(label, total=None)
    return progress, lambda n: progress.advance(task, n)


StyleOption = Annotated[int | None, typer.Option("--style", parser=_style, help="style id")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="server processes (use PostgreSQL for more than 1)")] = 1,
) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    from loraledger.api.bootstrap import check_serve_settings
    from loraledger.api.logging_setup import logging_config

    with explained():
        settings = settings_for_command()
        check_serve_settings(settings, workers)  # a bad layout, URL or worker count stops here
    uvicorn.run(
        "loraledger.api.http:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=logging_config(settings.log_format, settings.log_level, uvicorn=True),
        log_level=settings.log_level.lower(),
    )


@app.command()
def sync(style: StyleOption = None) -> None:
    """Scan the S3 bucket once and apply the matching rules; prints the report."""
    with service() as svc:
        progress, advance = _progress("listing S3")
        if progress is not None:
            with progress:
                report = svc.sync(style, advance)
        else:
            report = svc.sync(style)
    say(
        f"scanned {report.scanned}: {report.matched_pending} completed pending versions, "
        f"{report.matched_synced} matched synced versions, {report.created} created, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped; {report.events} events recorded"
    )
    for skipped in report.skipped:
        say(f"  skipped {skipped['key']}: {skipped['reason']}")


@app.command()
def rebuild() -> None:
    """Regenerate every JSON file from the event history."""
    with service() as svc:
        result = svc.rebuild()
    styles = result.styles_written
    say(f"wrote {len(styles)} styles: {', '.join(map(str, styles)) or '-'}")
    if result.failed:
        fail(f"the files of styles {', '.join(map(str, result.failed))} could not be written (see above)")


@app.command()
def history(
    style: Annotated[int, typer.Argument(parser=_style, help="style id")],
    version: Annotated[str, typer.Argument(parser=_version, help="version name, e.g. V8")],
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON the HTTP route answers")] = False,
) -> None:
    """A version's events and match decisions, oldest first."""
    from loraledger.api.render import history_text

    with service() as svc:
        answer = svc.history(style, version)
    if as_json:  # the data as it is: not through rich, which rewrites `:smile:` and `[bold]`;
        # JSON escapes whatever a terminal would act on, so nothing is redacted here.
        sys.stdout.write(json_for_terminal(json.dumps(answer, indent=2, ensure_ascii=False)) + "\n")
    else:
        out.print(redact(history_text(answer)), markup=False)  # its lines are escaped already


@app.command()
def replay(
    until: Annotated[datetime, typer.Option("--until", parser=_time, help="ISO-8601 time; no zone = UTC")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the files into")],
) -> None:
    """Write the JSON files as they were at a time (into a folder other than the live one)."""
    from loraledger.api.facade import ReplayTargetRefused, check_replay_target

    with explained():
        live = Path(settings_for_command().output_dir)
    try:
        check_replay_target(live, out_dir)
    except ReplayTargetRefused as refused:  # bad usage: refused before the store is opened
        fail(str(refused), 2)
    with service() as svc:
        styles = svc.replay(until, out_dir)
    say(f"wrote {len(styles)} styles as of {until.isoformat()} into {out_dir}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="a training_versions.json file or a folder tree")],
    style: StyleOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be recorded; write nothing")
    ] = False,
) -> None:
    """Import legacy training_versions.json files, merging duplicate entries of one version."""
    from loraledger.api.bootstrap import dry_run_overrides

    overrides: dict[str, Any] = {}
    if dry_run:
        with explained():
            overrides = dry_run_overrides(settings_for_command())
    with service(create_store=not dry_run, **overrides) as svc:
        outcomes = svc.import_path(path, style, dry_run=dry_run)
    refused = 0
    verb = "would record" if dry_run else "recorded"
    for outcome in outcomes:
        if outcome.report is None:
            refused += 1
            say(f"{outcome.path}: refused, nothing recorded")
            for error in outcome.errors:
                say(f"  {error}")
            continue
        r = outcome.report
        say(
            f"{outcome.path}: style {r.style_id}, {r.versions} versions, {r.imported} imported, "
            f"{r.merged} merged, {r.already_imported} already imported; {verb} {r.events} events"
        )
        for problem in outcome.problems:
            say(f"  {problem}")
    if not outcomes:
        fail(f"no training_versions.json found under {path}")
    if refused:
        fail(
            f"{refused} of {len(outcomes)} files refused (see above); the others were recorded"
            if not dry_run
            else f"{refused} of {len(outcomes)} files would be refused"
        )


@app.command()
def doctor(
    path: Annotated[Path, typer.Argument(help="a training_versions.json file or a folder tree")],
    style: StyleOption = None,
) -> None:
    """Report duplicates and inconsistencies in legacy files; writes nothing."""
    from loraledger.api.facade import check_legacy_files

    problems = 0
    settings_for_command()  # doctor reads no setting, but a bad one is refused by every command
    with explained():
        checks = check_legacy_files(path, style)
    if not checks:
        fail(f"no training_versions.json found under {path}")
    for check in checks:
        problems += len(check.problems)
        state = "ok" if not check.problems else f"{len(check.problems)} problems"
        say(f"{check.path}: {state}")
        for problem in check.problems:
            say(f"  {problem}")
    if problems:
        raise typer.Exit(1)


@app.command()
def reconcile(
    older_than: Annotated[
        str, typer.Option("--older-than", help="pending for longer than this (15m, 2h, 1d)")
    ] = "15m",
) -> None:
    """Ask RunPod /status about versions pending too long and apply the answers."""
    try:
        age = parse_duration(older_than)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    with service() as svc:
        report = svc.reconcile(age)
    say(
        f"checked {report.checked}: {report.applied} applied, {report.still_running} still running, "
        f"{report.failed_unknown} failed as unknown, {report.waiting} waiting, {len(report.errors)} errors"
    )
    for problem in report.errors:
        say(f"  {problem['style_id']} {problem['version']}: {problem['error']}")
    if report.errors:
        raise typer.Exit(1)


def main() -> None:
    install_log_redaction()  # a command's warnings go to stderr too
    app()
