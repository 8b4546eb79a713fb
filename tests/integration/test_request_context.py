"""Each request's id (`X-Request-ID`, the caller's when it is a plain token) and its latency by
route template, in process over the real app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from loraledger.api.http import create_app
from loraledger.api.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        output_dir=str(tmp_path / "styles"),
    )
    with TestClient(create_app(settings)) as client:
        yield client


def latency_count(route: str, status: str) -> float:
    labels = {"route": route, "method": "GET", "status": status}
    return REGISTRY.get_sample_value("loraledger_http_request_duration_seconds_count", labels) or 0.0


def test_a_plain_request_id_is_kept_and_anything_else_replaced(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y_z"})
    replaced = client.get("/healthz", headers={"X-Request-ID": "two words\x1b[31m"})
    none = client.get("/healthz")

    assert kept.headers["x-request-id"] == "abc-123.x:y_z"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", none.headers["x-request-id"])
    assert none.headers["x-request-id"] != replaced.headers["x-request-id"]


def test_latency_is_counted_by_route_template_never_by_raw_path(client: TestClient) -> None:
    template = "/styles/{style_id}/training_versions.json"
    before = latency_count(template, "404"), latency_count("unmatched", "404")

    for style_id in (7, 8, 9):
        assert client.get(f"/styles/{style_id}/training_versions.json").status_code == 404
    assert client.get("/no/such/route").status_code == 404

    assert latency_count(template, "404") == before[0] + 3
    assert latency_count("unmatched", "404") == before[1] + 1
