"""User JSON at the server's edge: PATCH refuses what would break a JavaScript reader of the file
(keys that shadow Object members, a description that is not text) and bodies over a megabyte; a
store that older code filled with a value nested hundreds of levels deep still starts, renders and
answers history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from loraledger.api.bootstrap import open_service
from loraledger.api.settings import Settings
from loraledger.domain.decisions import Decision, ImportOutcome, Rule
from loraledger.domain.indexes import StyleIndex
from loraledger.domain.training_version import TrainingVersion
from tests.e2e.conftest import LedgerServer, ServerFactory

LEGACY_DECISION = Decision("import", Rule.IMPORTED, ImportOutcome.IMPORTED)

JSON = {"content-type": "application/json"}
REFUSED_BODIES = {
    "__proto__": {"__proto__": {"isAdmin": True}},
    "constructor": {"constructor": {"prototype": {"polluted": 1}}},
    "prototype": {"prototype": 1},
    "toString": {"toString": "x"},
    "deep __proto__": {"meta": {"a": [{"b": {"__proto__": 1}}]}},
    "cleared __proto__": {"__proto__": None},
    "description 5": {"description": 5},
    "description list": {"description": ["a"]},
    "description object": {"description": {"slice": 1}},
    "description false beside a good field": {"isGood": True, "description": False},
}


def _patch(server: LedgerServer, raw: bytes | Iterator[bytes]) -> tuple[int, str]:
    response = server.client.patch("/styles/1/versions/V9", content=raw, headers=JSON)
    return response.status_code, response.text


def test_patch_refuses_keys_that_shadow_object_members_and_a_description_that_is_not_text(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V9", description="first")
    content = server.document_bytes(1)

    answers = {case: _patch(server, json.dumps(body).encode()) for case, body in REFUSED_BODIES.items()}

    wrong = {case: answer for case, answer in answers.items() if answer[0] != 422}
    assert wrong == {}
    for case, (_, text) in answers.items():
        detail = json.loads(text)["detail"]
        assert isinstance(detail, str), (case, detail)
        assert ("description" if case.startswith("description") else case.split()[-1]) in detail, detail
    assert server.document_bytes(1) == content
    assert "Annotated" not in [event["type"] for event in server.history(1, "V9")]

    # What a reader can take still goes through; null still clears.
    assert _patch(server, b'{"description": "second", "isGood": true, "proto": 1}')[0] == 200
    assert server.entry(1, "V9")["description"] == "second"
    assert _patch(server, b'{"description": null}')[0] == 200
    assert "description" not in server.entry(1, "V9")


def test_patch_bodies_over_a_megabyte_are_413_declared_or_streamed_and_change_nothing(
    server: LedgerServer,
) -> None:
    server.started_job(1, "V9")
    content = server.document_bytes(1)
    big = json.dumps({"note": "x" * 30_000_000}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, 2_000_000, 64 * 1024):
            yield big[start : start + 64 * 1024]

    declared = _patch(server, big)
    streamed = _patch(server, chunks())

    assert declared[0] == 413, declared
    assert streamed[0] == 413, streamed
    assert "1000000 bytes" in json.loads(declared[1])["detail"]
    assert server.healthy()
    after = server.document_bytes(1)
    assert after == content, (content, after)
    assert _patch(server, json.dumps({"note": "x" * 900_000}).encode())[0] == 200


DEEP = "[" * 500 + "1" + "]" * 500


def _record_as_older_code_did(server: LedgerServer) -> None:
    """A legacy entry nested 500 levels deep, saved straight into the store (no check on the way)."""
    service = open_service(
        Settings(
            _env_file=None,
            database_url=server.database_url,
            output_dir=str(server.output_dir),
        )
    )
    try:
        entry = {"id": "x", "name": "V1", "status": "pending", "parameters": {"x": "__X__"}}
        version = TrainingVersion.from_import(
            1, "V1", source="old.json", entry=entry, fingerprint="f", decision=LEGACY_DECISION
        )
        index = StyleIndex.open(1)
        index.add_versions(["V1"])
        (imported,) = version.pending_events
        object.__setattr__(imported, "entry_json", imported.entry_json.replace('"__X__"', DEEP))  # type: ignore[attr-defined]
        service.ledger.store.save(index, version)
    finally:
        service.close()


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_serve_starts_and_answers_on_a_store_holding_an_entry_nested_500_levels_deep(
    make_server: ServerFactory, store: str
) -> None:
    server = make_server(start=False, postgres=store == "postgres")
    _record_as_older_code_did(server)

    server.start()

    history = server.history(1, "V1")
    assert [event["type"] for event in history] == ["Imported"]
    assert "nested deeper than 64 levels" in history[0]["warning"]
    entry = server.entry(1, "V1")
    assert isinstance(entry["parameters"]["x"], list)
    assert server.file(1).exists()
    assert server.client.patch("/styles/1/versions/V1", json={"isGood": True}).status_code == 200
    assert server.entry(1, "V1")["isGood"] is True
    assert "nested deeper than 64 levels" in server.stderr_text()
