"""`loraledger import` on trees with hostile or broken files, and stores that older code filled with
values no reader can take: each bad file is refused in one line naming it and the reason, the rest
of the tree imports, the exit status says something was refused, and nothing of a refused file
(or of a style two folders claim) is recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loraledger.domain.decisions import Decision, ImportOutcome, Rule
from loraledger.domain.indexes import StyleIndex
from loraledger.domain.training_version import TrainingVersion
from tests.integration.test_cli import DOCUMENT, FIXTURES, Cli, cli, one_line, write_document

LEGACY_DECISION = Decision("import", Rule.IMPORTED, ImportOutcome.IMPORTED)

__all__ = ["cli"]  # the fixture, shared with test_cli.py

JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
OTHER_JOB = "0fcd05e8-8adc-4cf3-a10f-dcbdee824767-e1"
DEEP = "[" * 500 + "1" + "]" * 500


def entry_text(**fields: Any) -> str:
    entry = {"id": "x", "name": "V1", "status": "pending", **fields}
    return json.dumps(entry)


def deep_text(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


# Folder -> (file text, what the refusal must say).
BAD_FILES: dict[str, tuple[str, str]] = {
    "2_shared_job": (
        json.dumps(
            {
                "versions": [
                    {"id": JOB, "name": "V2", "status": "pending"},
                    {"id": JOB, "name": "V1", "status": "failed"},
                ]
            }
        ),
        f"job id {JOB} is on both V2 and V1",
    ),
    "3_nan": (
        '{"versions": [' + entry_text(parameters="__X__").replace('"__X__"', '{"lr": NaN}') + "]}",
        "NaN is not a JSON number",
    ),
    "4_huge": (
        '{"versions": [' + entry_text(parameters="__X__").replace('"__X__"', '{"lr": 1e400}') + "]}",
        "too large for JSON",
    ),
    "5_surrogate": (
        '{"versions": [' + entry_text(description="\\ud800").replace("\\\\", "\\") + "]}",
        "surrogate",
    ),
    "6_proto": (
        json.dumps({"versions": [json.loads(entry_text(parameters={"a": {"__proto__": {"x": 1}}}))]}),
        "'__proto__'",
    ),
    "7_description": (json.dumps({"versions": [json.loads(entry_text(description=7))]}), "description"),
    "8_deep": (
        '{"versions": [' + entry_text(parameters="__X__").replace('"__X__"', DEEP) + "]}",
        "nested deeper",
    ),
}


def test_each_bad_file_of_a_tree_is_refused_naming_it_and_the_others_import(cli: Cli) -> None:
    good = write_document(
        cli.styles / "1_ink_intensity" / DOCUMENT,
        (FIXTURES / "style_1_ink_intensity.json").read_text(encoding="utf-8"),
    )
    for folder, (text, _) in BAD_FILES.items():
        write_document(cli.styles / folder / DOCUMENT, text)

    result = cli.run("import", str(cli.styles))

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert one_line(result.stderr) == (
        f"error: {len(BAD_FILES)} of {len(BAD_FILES) + 1} files refused (see above); the others were recorded"
    )
    lines = result.stdout.splitlines()
    for folder, (_, reason) in BAD_FILES.items():
        path = str(cli.styles / folder / DOCUMENT)
        (at,) = [i for i, line in enumerate(lines) if line.startswith(path + ":")]
        assert lines[at] == f"{path}: refused, nothing recorded"
        assert reason in lines[at + 1], (folder, lines[at : at + 3])
    assert any(line.startswith(f"{good}: style 1, 8 versions") for line in lines)
    service = cli.service()
    try:
        assert service.ledger.queries.version_names(1) == [f"V{n}" for n in range(8, 0, -1)]
        assert [service.ledger.queries.version_names(s) for s in range(2, 9)] == [[]] * 7
    finally:
        service.close()
    assert sorted(p.parent.name for p in cli.styles.rglob(DOCUMENT)) == sorted(
        ["1_ink_intensity", *BAD_FILES]
    )

    # The store stays usable: rebuild and a second import answer as before.
    cli.ok("rebuild")
    again = cli.run("import", str(cli.styles))
    assert again.returncode == 1 and "0 imported" in again.stdout


def test_two_folders_naming_the_same_style_are_both_refused_and_the_others_import(cli: Cli) -> None:
    write_document(
        cli.styles / "1_a" / DOCUMENT, {"versions": [{"id": "a", "name": "V1", "status": "pending"}]}
    )
    write_document(
        cli.styles / "1_b" / DOCUMENT, {"versions": [{"id": "b", "name": "V2", "status": "pending"}]}
    )
    write_document(
        cli.styles / "2_ok" / DOCUMENT, {"versions": [{"id": "c", "name": "V1", "status": "failed"}]}
    )

    result = cli.run("import", str(cli.styles))

    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    for folder, other in (("1_a", "1_b"), ("1_b", "1_a")):
        path = str(cli.styles / folder / DOCUMENT)
        (at,) = [i for i, line in enumerate(lines) if line.startswith(path + ":")]
        assert lines[at] == f"{path}: refused, nothing recorded"
        assert "style 1" in lines[at + 1] and other in lines[at + 1], lines[at : at + 2]
    service = cli.service()
    try:
        assert service.ledger.queries.version_names(1) == []
        assert service.ledger.queries.version_names(2) == ["V1"]
    finally:
        service.close()
    doctor = cli.run("doctor", str(cli.styles))
    assert doctor.returncode == 1 and "1_b" in doctor.stdout


def test_a_file_that_links_outside_the_tree_is_refused_and_never_read(cli: Cli, tmp_path: Path) -> None:
    secret = write_document(
        tmp_path / "elsewhere" / "9_secret" / DOCUMENT,
        {"versions": [{"id": "s", "name": "V7", "status": "pending", "description": "secret text"}]},
    )
    linked = cli.styles / "6_link" / DOCUMENT
    linked.parent.mkdir(parents=True)
    linked.symlink_to(secret)
    (cli.styles / "7_folder").symlink_to(secret.parent, target_is_directory=True)
    write_document(
        cli.styles / "2_ok" / DOCUMENT, {"versions": [{"id": "c", "name": "V1", "status": "failed"}]}
    )

    result = cli.run("import", str(cli.styles))
    single = cli.run("import", str(linked))

    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith(f"{linked}:")]
    assert lines[at] == f"{linked}: refused, nothing recorded"
    assert "outside" in lines[at + 1], lines[at : at + 2]
    assert single.returncode == 1 and "outside" in single.stdout, (single.stdout, single.stderr)
    service = cli.service()
    try:
        assert [service.ledger.queries.version_names(s) for s in (2, 6, 7, 9)] == [["V1"], [], [], []]
    finally:
        service.close()
    assert "secret text" not in result.stdout + single.stdout
    assert linked.is_symlink() and "secret text" in secret.read_text()  # neither read nor written through


def test_a_link_that_stays_inside_the_tree_is_imported(cli: Cli) -> None:
    real = write_document(
        cli.root / "tree" / "data" / "v.json", {"versions": [{"id": "a", "name": "V3", "status": "failed"}]}
    )
    linked = cli.root / "tree" / "3_x" / DOCUMENT
    linked.parent.mkdir(parents=True)
    linked.symlink_to(real)

    cli.ok("import", str(cli.root / "tree"))

    service = cli.service()
    try:
        assert service.ledger.queries.version_names(3) == ["V3"]
    finally:
        service.close()


def _append_deep_events(cli: Cli) -> None:
    """What the older code recorded for a legacy file nested 500 levels deep, and a PATCH after it."""
    entry = json.loads(entry_text(id=JOB, parameters={"x": "__X__"}))
    service = cli.service()
    try:
        version = TrainingVersion.from_import(
            1, "V1", source="legacy.json", entry=entry, fingerprint="f1", decision=LEGACY_DECISION
        )
        version.merge_entry(
            source="legacy.json",
            raw_entry=entry,
            taken={"deep": "__X__"},
            fingerprint="f2",
            decision=LEGACY_DECISION,
        )
        version.annotate(set_fields={"isGood": True}, cleared=[])
        index = StyleIndex.open(1)
        index.add_versions(["V1"])
        # The event attributes are text: put the deep JSON in where the placeholder is.
        for event in version.pending_events:
            for name in ("entry_json", "raw_entry_json", "taken_json"):
                if hasattr(event, name):
                    object.__setattr__(event, name, getattr(event, name).replace('"__X__"', DEEP))
        service.ledger.store.save(index, version)
    finally:
        service.close()


def test_a_store_holding_an_event_nested_500_levels_deep_still_rebuilds_and_answers_history(
    cli: Cli, database_url: str
) -> None:
    cli.env["LORALEDGER_DATABASE_URL"] = database_url
    _append_deep_events(cli)
    (cli.styles / "1_deep").mkdir(parents=True)  # the layout picks the style's folder

    rebuilt = cli.run("rebuild")
    text = cli.run("history", "1", "V1")
    answer = cli.run("history", "1", "V1", "--json")

    assert rebuilt.returncode == 0, (rebuilt.stdout, rebuilt.stderr)
    assert "wrote 1 style: 1" in rebuilt.stdout
    assert "nested deeper than 64 levels" in rebuilt.stderr and "Traceback" not in rebuilt.stderr
    (entry,) = json.loads((cli.styles / "1_deep" / DOCUMENT).read_text(encoding="utf-8"))["versions"]
    assert entry["isGood"] is True and entry["id"] == JOB
    assert isinstance(entry["parameters"]["x"], list)  # the first levels as JSON, the rest as text
    assert text.returncode == 0 and "Imported" in text.stdout and "nested deeper" in text.stdout, text.stderr
    assert answer.returncode == 0, answer.stderr
    events = json.loads(answer.stdout)["events"]
    assert [event["type"] for event in events] == ["Imported", "Merged", "Annotated"]
    assert [bool(event.get("warning")) for event in events] == [True, True, False]

    # Later commands on that version work too (they load it from the store).
    cli.ok(
        "import",
        str(
            write_document(
                cli.root / "in" / "1" / DOCUMENT,
                {"versions": [{"id": "b", "name": "V2", "status": "failed"}]},
            )
        ),
    )
    assert [e["name"] for e in json.loads((cli.styles / "1_deep" / DOCUMENT).read_text())["versions"]] == [
        "V2",
        "V1",
    ]
