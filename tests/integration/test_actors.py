"""Actors on a real store (CONTRACT §8): an actor tree imported in place and rebuilt byte for byte,
the `<id>.json` files of the deployment being replaced, a style and an actor with the same number
kept apart, and the commands that name an actor (`actor/6`, `--actor`, `--actors`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loraledger.adapters.file_layout import FolderMissing
from loraledger.api.bootstrap import open_service
from loraledger.api.facade import Service
from loraledger.api.settings import Settings
from loraledger.domain.subjects import ACTOR
from tests.integration.test_cli import Cli, make_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
ACTOR_FIXTURES = sorted(FIXTURES.glob("actor_*.json"))
DEPLOYMENT_LAYOUT = "data/actors/{actor_id:04d}_*/training_versions.json"
DOCUMENT = "training_versions.json"

ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(database_url: str, tmp_path: Path) -> Iterator[ServiceFactory]:
    made: list[Service] = []

    def make(root: Path, actor_layout: str = DEPLOYMENT_LAYOUT) -> Service:
        service = open_service(
            Settings(
                _env_file=None,
                database_url=database_url,
                output_dir=str(root),
                output_layout="resources/style_images/{style_id}_*/training_versions.json",
                actor_output_layout=actor_layout,
                state_dir=str(tmp_path / "loraledger-state"),
            )
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def folder_of(fixture: Path) -> str:
    """`actor_0006_european_20_female_rev2.json` -> `0006_european_20_female` (as the deployment names it)."""
    return fixture.stem.removeprefix("actor_").split("_rev")[0]


def as_written(fixture: Path) -> str:
    """The fixture as JSON.stringify writes it: the copies were saved with a final newline."""
    return fixture.read_text(encoding="utf-8").removesuffix("\n")


@pytest.mark.parametrize("fixture", ACTOR_FIXTURES, ids=lambda path: path.stem)
def test_every_actor_fixture_imported_in_place_in_a_data_actors_tree_is_rebuilt_byte_for_byte(
    make_service: ServiceFactory, tmp_path: Path, fixture: Path
) -> None:
    root = tmp_path / "project"
    path = root / "data" / "actors" / folder_of(fixture) / DOCUMENT
    path.parent.mkdir(parents=True)
    shutil.copyfile(fixture, path)
    service = make_service(root)

    outcomes = service.import_path(root / "data" / "actors", None, kind=ACTOR)

    assert [(o.report.kind, o.report.style_id) for o in outcomes if o.report] == [
        (ACTOR, int(folder_of(fixture)[:4]))
    ]
    assert path.read_text(encoding="utf-8") == as_written(fixture), "written back in place"
    path.unlink()
    rebuilt = make_service(root).rebuild()
    assert (rebuilt.styles_written, rebuilt.actors.styles_written) == ([], [int(folder_of(fixture)[:4])])
    assert path.read_text(encoding="utf-8") == as_written(fixture), "rebuilt from the events"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        f"data/actors/{folder_of(fixture)}/{DOCUMENT}"
    ]


def test_the_deployments_actor_id_files_import_and_rebuild_in_their_own_layout(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    files = root / "data" / "actor_training_versions"
    files.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "actor_0006_european_20_female.json", files / "6.json")
    shutil.copyfile(FIXTURES / "actor_0001_european_20_female.json", files / "1.json")
    (files / "notes.json").write_text("{}", encoding="utf-8")  # not an actor's file: not read
    service = make_service(root, "data/actor_training_versions/{actor_id}.json")

    outcomes = service.import_path(files, None, kind=ACTOR)
    (files / "6.json").unlink()
    service.rebuild()

    assert sorted(o.report.style_id for o in outcomes if o.report) == [1, 6]
    assert (files / "6.json").read_text("utf-8") == as_written(
        FIXTURES / "actor_0006_european_20_female.json"
    )


def test_the_padded_layout_picks_the_existing_actor_folder_and_never_another_actors(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    for folder in ("0060_other", "0006_european_20_female", "6_unpadded"):
        (root / "data" / "actors" / folder).mkdir(parents=True)

    service = make_service(root)

    assert (
        service.actor_files.path_for(6)
        == (root / "data" / "actors" / "0006_european_20_female" / DOCUMENT).resolve()
    )
    assert service.actor_files.path_for(60) == (root / "data" / "actors" / "0060_other" / DOCUMENT).resolve()
    with pytest.raises(FolderMissing, match="actor 7 has no 0007_\\* folder"):
        service.actor_files.path_for(7)  # the file waits for its folder, as a style's does


def test_style_6_and_actor_6_imported_into_one_store_keep_their_own_files_and_histories(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    service = make_service(root, "actors/{actor_id}/training_versions.json")

    service.import_path(FIXTURES / "style_1_ink_intensity.json", 6)
    service.import_path(FIXTURES / "actor_0006_european_20_female.json", 6, kind=ACTOR)

    style_names = [v["name"] for v in json.loads(service.document(6) or "")["versions"]]
    actor_text = service.document(6, ACTOR)
    assert actor_text == as_written(FIXTURES / "actor_0006_european_20_female.json")
    assert (root / "actors" / "6" / DOCUMENT).read_text("utf-8") == actor_text
    assert style_names != [v["name"] for v in json.loads(actor_text)["versions"]]
    history = service.history(6, "V6", ACTOR)
    assert (history["actor_id"], "style_id" in history) == (6, False)
    assert history["events"][0]["data"]["source"].endswith("actor_0006_european_20_female.json")


def test_an_edit_the_old_ui_makes_to_an_actors_file_is_taken_in_for_that_actor(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    path = root / "data" / "actors" / "0006_european_20_female" / DOCUMENT
    path.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "actor_0006_european_20_female.json", path)
    service = make_service(root)
    service.import_path(root / "data" / "actors", None, kind=ACTOR)
    document = json.loads(path.read_text("utf-8"))
    document["versions"][0]["isGood"] = True
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")

    service.catch_up()

    assert service.ledger.queries.entry(6, "V6", ACTOR)["isGood"] is True
    assert service.ledger.queries.find_version(6, "V6") is None
    types = [event["type"] for event in service.history(6, "V6", ACTOR)["events"]]
    assert types[-1] == "EditedInFile"


@pytest.fixture
def actor_cli(tmp_path: Path) -> Cli:
    cli = make_cli(tmp_path)
    cli.env.update(
        LORALEDGER_OUTPUT_DIR=str(cli.root),
        LORALEDGER_ACTOR_OUTPUT_LAYOUT=DEPLOYMENT_LAYOUT,
    )
    folder = cli.root / "data" / "actors" / "0006_european_20_female"
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "actor_0006_european_20_female.json", folder / DOCUMENT)
    return cli


def test_the_commands_name_an_actor_as_actor_slash_id(actor_cli: Cli) -> None:
    assert "ok" in actor_cli.ok("doctor", "data/actors", "--actors").stdout
    actor_cli.ok("import", "data/actors", "--actors")

    history = json.loads(actor_cli.ok("history", "actor/6", "V6", "--json").stdout)
    entry = json.loads(actor_cli.ok("annotate", "actor/6", "V6", '{"isGood": true}', "--json").stdout)
    missing = actor_cli.run("history", "6", "V6")  # a bare number is a style

    assert (history["actor_id"], history["version"]) == (6, "V6")
    assert entry["isGood"] is True
    document = (actor_cli.root / "data/actors/0006_european_20_female" / DOCUMENT).read_text("utf-8")
    assert json.loads(document)["versions"][0]["isGood"] is True
    assert missing.returncode == 1 and "style 6 has no version V6" in missing.stderr


def test_a_subject_that_is_neither_kind_is_bad_usage(actor_cli: Cli) -> None:
    for subject in ("actors/6", "actor/06", "style/0", "actor/x"):
        result = actor_cli.run("history", subject, "V1")
        assert result.returncode == 2, (subject, result.stderr)
