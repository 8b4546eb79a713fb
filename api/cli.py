"""`loraledger` on the command line (CONTRACT §6, §10): parse, call one facade method, render.

Every command takes `--json` (the result as JSON on stdout, nothing else there; a failure is one
line on stderr, as without it). Exit status: 0 on success, 1 on a failure explained in one line,
2 on bad usage (a setting whose value cannot be used included). Logs go to stderr.

Over 350 lines because each command imports what it uses inside itself (so that `--help` and
`--version` start without the store, the clients and rich), and the commands are one list.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from loraledger.adapters.redaction import install_log_redaction, redact
from loraledger.api.cli_support import (
    JsonOption,
    explained,
    fail,
    out,
    parse_actor,
    parse_json_object,
    parse_style,
    parse_subject,
    parse_version,
    parse_when,
    print_json,
    progress_bar,
    say,
    service,
    settings_for_command,
)
from loraledger.api.wording import plural
from loraledger.domain.parse_duration import parse_duration
from loraledger.domain.subjects import ACTOR, STYLE, Subject, SubjectKind

# `--help` and `--version` import no more than typer and the few modules above: the store, the
# clients, pydantic, prometheus and rich are imported by the commands that use them (the start
# is paid by every command, and by every script that runs one).

app = typer.Typer(
    name="loraledger",
    help="Event-sourced record of LoRA training versions.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    # Plain help text: rendering it with rich costs more than the rest of the process start.
    rich_markup_mode=None,
)
StyleOption = Annotated[int | None, typer.Option("--style", parser=parse_style, help="style id")]
ActorOption = Annotated[int | None, typer.Option("--actor", parser=parse_actor, help="actor id")]
ActorsOption = Annotated[
    bool,
    typer.Option("--actors", help="a tree of actors' folders (<id>_<slug>, zero-padded) or <id>.json files"),
]
SubjectArgument = Annotated[
    Subject,
    typer.Argument(
        parser=parse_subject, metavar="SUBJECT", help="style/<id> or actor/<id>; a number is a style"
    ),
]


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as installed_version

        sys.stdout.write(f"loraledger {installed_version('loraledger')}\n")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Event-sourced record of LoRA training versions."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="server processes (use PostgreSQL for more than 1)")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="log as JSON lines (stdout stays empty)")] = False,
) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    from loraledger.adapters.metrics import prepare_workers, remove_workers_dir
    from loraledger.api.bootstrap import check_serve_settings
    from loraledger.api.logging_setup import logging_config

    with explained():
        settings = settings_for_command(**({"log_format": "json"} if as_json else {}))
        check_serve_settings(settings, workers)  # a bad layout, URL or worker count stops here
    metrics_dir = prepare_workers(workers)  # several workers: their metrics go to files a scrape sums
    try:
        uvicorn.run(
            "loraledger.api.http:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(settings.log_format, settings.log_level, uvicorn=True),
            log_level=settings.log_level.lower(),
        )
    finally:
        remove_workers_dir(metrics_dir)


@app.command()
def start(
    subject: SubjectArgument,
    version: Annotated[
        str | None, typer.Option("--version-name", parser=parse_version, help="V<n>; default: the next")
    ] = None,
    parameters: Annotated[
        dict[str, Any] | None,
        typer.Option(parser=parse_json_object, metavar="JSON", help="training parameters (a JSON object)"),
    ] = None,
    description: Annotated[str | None, typer.Option(help="what this version tries")] = None,
    extra_input: Annotated[
        dict[str, Any] | None,
        typer.Option("--input", parser=parse_json_object, metavar="JSON", help="extra RunPod input"),
    ] = None,
    fields: Annotated[
        dict[str, Any] | None,
        typer.Option(parser=parse_json_object, metavar="JSON", help="extra entry fields"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a training on RunPod (as POST /styles/{id}/trainings); prints the version's entry."""
    with service() as svc:
        entry = svc.start(
            subject.id,
            version,
            parameters=parameters or {},
            description=description,
            extra_input=extra_input or {},
            fields=fields or {},
            kind=subject.kind,
        )
    if as_json:
        print_json(entry)
    else:
        say(f"{subject} {entry.get('name')}: {entry.get('status')}, RunPod job {entry.get('id')}")


@app.command()
def annotate(
    subject: SubjectArgument,
    version: Annotated[str, typer.Argument(parser=parse_version, help="version name, e.g. V8")],
    fields: Annotated[
        dict[str, Any],
        typer.Argument(
            parser=parse_json_object, metavar="JSON", help="fields to set, null clears one; - reads stdin"
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Set or clear a version's own fields (as PATCH /styles/{id}/versions/{name})."""
    set_fields = {key: value for key, value in fields.items() if value is not None}
    cleared = [key for key, value in fields.items() if value is None]
    with service() as svc:
        entry = svc.annotate(subject.id, version, set_fields, cleared, subject.kind)
    if as_json:
        print_json(entry)
    else:
        said = f"set {', '.join(set_fields) or '-'}; cleared {', '.join(cleared) or '-'}"
        say(f"{subject} {version}: {said}")


@app.command()
def cancel(
    subject: SubjectArgument,
    version: Annotated[str, typer.Argument(parser=parse_version, help="version name, e.g. V8")],
    as_json: JsonOption = False,
) -> None:
    """Cancel a pending training on RunPod (as POST /styles/{id}/versions/{name}/cancel)."""
    with service() as svc:
        entry = svc.cancel(subject.id, version, subject.kind)
    if as_json:
        print_json(entry)
    else:
        say(f"{subject} {version}: cancelled (job {entry.get('id')})")


@app.command()
def unmatched(as_json: JsonOption = False) -> None:
    """List webhooks parked for jobs no version claims yet (as GET /webhooks/unmatched)."""
    with service() as svc:
        items = svc.unmatched()
    if as_json:
        print_json({"unmatched": items})
        return
    for item in items:
        say(
            f"{item['job_id']} {item['status']} model {item['model_name'] or '-'}: "
            f"{item['deliveries']} parked, latest {item['received_at']}"
        )
    if not items:
        say("no unmatched webhooks")


@app.command()
def sync(style: StyleOption = None, actor: ActorOption = None, as_json: JsonOption = False) -> None:
    """Scan the S3 bucket once (styles' and actors' prefixes) and apply the matching rules; prints
    the report."""
    from loraledger.api.render import sync_report_json

    if style is not None and actor is not None:
        raise typer.BadParameter("give --style or --actor, not both")
    with service() as svc:
        progress, advance = progress_bar("listing S3") if not as_json else (None, None)
        if progress is not None:
            with progress:
                report = svc.sync(style, advance, only_actor=actor)
        else:
            report = svc.sync(style, only_actor=actor)
        backups = svc.take_backups()
    if as_json:
        print_json({**sync_report_json(report), "backups": [str(path) for path in backups]})
        return
    say(
        f"scanned {report.scanned}: {report.matched_pending} completed pending versions, "
        f"{report.matched_synced} matched synced versions, {report.created} created, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped; "
        f"{plural(report.events, 'event')} recorded"
    )
    for skipped in report.skipped:
        say(f"  skipped {skipped['key']}: {skipped['reason']}")
    for why in report.waiting.values():
        say(f"  {why} (LORALEDGER_OUTPUT_FALLBACK says where it goes meanwhile)")


@app.command()
def skipped(style: StyleOption = None, as_json: JsonOption = False) -> None:
    """List every S3 file a sync passed over (once per key and ETag), with why."""
    with service() as svc:
        skips = svc.skipped_files(style)
    if as_json:
        print_json({"skipped": skips})
        return
    say(plural(len(skips), "skipped file"))
    for skip in skips:
        said = f"style {skip['style_id']} {skip['version']}" if skip["style_id"] is not None else "no style"
        say(f"  {skip['skipped_at']}  {skip['key']} (ETag {skip['etag']}, {said}): {skip['reason']}")


@app.command()
def rebuild(as_json: JsonOption = False) -> None:
    """Regenerate every JSON file from the event history."""
    with service() as svc:
        rebuilt = svc.rebuild()
        backups = svc.take_backups()
    from loraledger.api.render import rebuild_json

    result, actors = rebuilt, rebuilt.actors
    styles = result.styles_written
    if as_json:
        print_json(rebuild_json(rebuilt, backups))
    else:
        say(f"wrote {plural(len(styles), 'style')}: {', '.join(map(str, styles)) or '-'}")
        if actors.styles_written:
            written = actors.styles_written
            say(f"wrote {plural(len(written), 'actor')}: {', '.join(map(str, written))}")
    if result.failed:
        fail(f"the files of styles {', '.join(map(str, result.failed))} could not be written (see above)")
    if actors.failed:
        fail(f"the files of actors {', '.join(map(str, actors.failed))} could not be written (see above)")


@app.command()
def history(
    subject: SubjectArgument,
    version: Annotated[str, typer.Argument(parser=parse_version, help="version name, e.g. V8")],
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON the HTTP route answers")] = False,
) -> None:
    """A version's events and match decisions, oldest first."""
    from loraledger.api.render import history_text

    with service() as svc:
        answer = svc.history(subject.id, version, subject.kind)
    if as_json:
        print_json(answer)
    else:
        out.print(redact(history_text(answer)), markup=False)  # its lines are escaped already


@app.command()
def replay(
    until: Annotated[
        datetime, typer.Option("--until", parser=parse_when, help="ISO-8601 time; no zone = UTC")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the files into")],
    as_json: JsonOption = False,
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
        actors = svc.replay_actors(until, out_dir)
        began = svc.first_event_at() if not styles and not actors else None
    if as_json:
        answer: dict[str, Any] = {"styles": styles, "until": until.isoformat(), "out": str(out_dir)}
        print_json({**answer, "actors": actors} if actors else answer)
    elif styles or actors:
        said = plural(len(styles), "style") + (f" and {plural(len(actors), 'actor')}" if actors else "")
        say(f"wrote {said} as of {until.isoformat()} into {out_dir}")
    else:
        since = f"the history begins at {began.isoformat()}" if began else "the history is empty"
        say(f"no style had a version as of {until.isoformat()} ({since}): nothing written into {out_dir}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="a training_versions.json file or a folder tree")],
    style: StyleOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be recorded; write nothing")
    ] = False,
    as_json: JsonOption = False,
    actor: ActorOption = None,
    actors: ActorsOption = False,
) -> None:
    """Import legacy training_versions.json files, merging duplicate entries of one version."""
    from loraledger.api.bootstrap import dry_run_overrides

    overrides: dict[str, Any] = {}
    if dry_run:
        with explained():
            overrides = dry_run_overrides(settings_for_command())
    with service(create_store=not dry_run, **overrides) as svc:
        outcomes = svc.import_path(
            path, actor if actor is not None else style, dry_run=dry_run, kind=_kind_of(style, actor, actors)
        )
    refused = sum(1 for outcome in outcomes if outcome.report is None)
    if as_json:
        print_json([_import_json(outcome) for outcome in outcomes])
    else:
        _say_imports(outcomes, "would record" if dry_run else "recorded")
    if not outcomes:
        fail(f"no training_versions.json{_of_style(style)} found under {path}")
    if refused:
        fail(
            f"{refused} of {len(outcomes)} files refused (see above); the others were recorded"
            if not dry_run
            else f"{refused} of {len(outcomes)} files would be refused"
        )


def _of_style(style: int | None) -> str:
    return "" if style is None else f" of style {style} (a folder named {style} or {style}_<slug>)"


def _import_json(outcome: Any) -> dict[str, Any]:
    report = outcome.report
    counts = {} if report is None else {k: v for k, v in asdict(report).items() if k != "decisions"}
    return {
        "path": str(outcome.path),
        "refused": report is None,
        "errors": list(outcome.errors),
        "problems": list(outcome.problems),
        **counts,
    }


def _say_imports(outcomes: list[Any], verb: str) -> None:
    for outcome in outcomes:
        if outcome.report is None:
            say(f"{outcome.path}: refused, nothing recorded")
            for error in outcome.errors:
                say(f"  {error}")
            continue
        r = outcome.report
        say(
            f"{outcome.path}: {r.kind} {r.style_id}, {plural(r.versions, 'version')}, {r.imported} imported, "
            f"{r.merged} merged, {r.already_imported} already imported; {verb} {plural(r.events, 'event')}"
        )
        for problem in outcome.problems:
            say(f"  {problem}")


@app.command()
def doctor(
    path: Annotated[Path, typer.Argument(help="a training_versions.json file or a folder tree")],
    style: StyleOption = None,
    as_json: JsonOption = False,
    actor: ActorOption = None,
    actors: ActorsOption = False,
) -> None:
    """Report duplicates and inconsistencies in legacy files; writes nothing."""
    from datetime import UTC

    from loraledger.api.facade import check_legacy_files

    kind = _kind_of(style, actor, actors)
    settings = settings_for_command()  # the reconcile age, and RunPod when it is configured
    with explained():
        subject_id = actor if actor is not None else style
        checks = check_legacy_files(path, subject_id, settings, datetime.now(UTC), kind)
    if not checks:
        fail(f"no training_versions.json{_of_style(style)} found under {path}")
    if as_json:
        print_json([{"path": str(check.path), "problems": check.problems} for check in checks])
    for check in checks if not as_json else ():
        state = "ok" if not check.problems else plural(len(check.problems), "problem")
        say(f"{check.path}: {state}")
        for problem in check.problems:
            say(f"  {problem}")
    if any(check.problems for check in checks):
        raise typer.Exit(1)


@app.command()
def reconcile(
    older_than: Annotated[
        str, typer.Option("--older-than", help="pending for longer than this (15m, 2h, 1d)")
    ] = "15m",
    as_json: JsonOption = False,
) -> None:
    """Ask RunPod /status about versions pending too long and apply the answers."""
    from loraledger.api.render import reconcile_report_json

    try:
        age = parse_duration(older_than)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    with service() as svc:
        report = svc.reconcile(age)
    if as_json:
        print_json(reconcile_report_json(report))
    else:
        say(
            f"checked {report.checked}: {report.applied} applied, {report.still_running} still running, "
            f"{report.failed_unknown} failed as unknown, {report.waiting} waiting, "
            f"{len(report.errors)} errors"
        )
        for problem in report.errors:
            subject = f"actor {problem['actor_id']}" if "actor_id" in problem else problem["style_id"]
            say(f"  {subject} {problem['version']}: {problem['error']}")
    if report.errors:
        raise typer.Exit(1)


def _kind_of(style: int | None, actor: int | None, actors: bool) -> SubjectKind:
    """The kind of subject `import` and `doctor` read: actors with `--actor` or `--actors`."""
    if style is not None and (actor is not None or actors):
        raise typer.BadParameter("give --style, or --actor / --actors, not both")
    return ACTOR if actor is not None or actors else STYLE


def main() -> None:
    install_log_redaction()  # a command's warnings go to stderr too
    app(prog_name="loraledger")  # also under `python -m loraledger`: completion is for `loraledger`
