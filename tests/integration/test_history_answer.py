"""The history route answers what its response model gives, byte for byte, without validating again."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from loraledger.adapters.store import store_env
from loraledger.api.http import create_app
from loraledger.api.schemas import VersionHistory
from loraledger.api.settings import Settings
from loraledger.application.ledger import Ledger, LedgerConfig
from tests.integration.test_stored_shapes import PLAIN, PREFIX, SteppingClock, record_the_fixture_scenario


def test_every_history_answer_is_the_bytes_its_response_model_gives(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = SteppingClock()
    ledger = Ledger.open(
        store_env(database_url), config=LedgerConfig(lora_url_base=PLAIN, s3_prefix=PREFIX), clock=clock
    )
    record_the_fixture_scenario(ledger, clock)  # starts, webhooks, syncs, imports, annotations
    names = [(s, v.version_name) for s in (1, 2, 3) for v in ledger.queries.style_versions(s)]
    ledger.close()
    assert len(names) >= 10

    app = create_app(Settings(database_url=database_url, output_dir=str(tmp_path / "out")))
    with TestClient(app) as client:
        for style_id, name in names:
            answer = client.get(f"/styles/{style_id}/versions/{name}/history")
            assert answer.status_code == 200
            model = VersionHistory.model_validate(json.loads(answer.content))
            expected = model.model_dump(mode="json", exclude_unset=True)
            assert answer.content == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
