"""A start the version itself refuses is a 409 whatever the settings; only a start that could
happen is told which setting it misses (503)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from loraledger.adapters.store import store_env
from loraledger.api.http import create_app
from loraledger.api.settings import Settings
from loraledger.application.ledger import Ledger, LedgerConfig
from loraledger.domain.observations import JobReport

JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
BASE = "https://bucket.s3.amazonaws.com/"


def test_starting_a_completed_version_without_a_public_url_is_409_and_a_new_one_503(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(store_env(database_url), config=LedgerConfig(lora_url_base=BASE))
    request = ledger.start.request(1, "V8", parameters={})
    ledger.start.record_start(request, JOB)
    done = JobReport(job_id=JOB, status="COMPLETED", output_status="success", model_name="style_1_vV8")
    ledger.reports.apply(done, source="webhook")
    ledger.close()
    settings = Settings(_env_file=None, database_url=database_url, output_dir=str(tmp_path / "out"))
    assert settings.public_url is None

    with TestClient(create_app(settings)) as client:
        completed = client.post("/styles/1/trainings", json={"version_name": "V8"})
        fresh = client.post("/styles/1/trainings", json={"version_name": "V9"})

    assert completed.status_code == 409, completed.text
    assert completed.json()["detail"] == "style 1 V8 is completed; a completed LoRA is never overwritten"
    assert fresh.status_code == 503 and "LORALEDGER_PUBLIC_URL" in fresh.json()["detail"]
