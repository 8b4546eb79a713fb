"""The Dockerfile and compose.yaml, checked without docker (not available on these machines):
the Dockerfile is parsed, its `CMD` run the way the image would run it (its ENV, its working
folder, the installed package) and its health check asked against it; compose's settings are
the ones `loraledger` accepts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from loraledger.api.settings import load_settings
from tests.support.commands import loraledger_command
from tests.support.server import STARTUP_TIMEOUT, free_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DATA = "/data"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def only(found: list[tuple[str, str]], keyword: str) -> str:
    values = [rest for name, rest in found if name == keyword]
    assert values, f"no {keyword} in the Dockerfile"
    return values[-1]  # the one that counts


def image_env(found: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, rest in found:
        if name == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(ROOT / "Dockerfile")


def test_the_image_is_slim_python_runs_as_a_user_and_copies_what_exists(
    dockerfile: list[tuple[str, str]],
) -> None:
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", only(dockerfile, "FROM")), only(dockerfile, "FROM")
    assert only(dockerfile, "USER") not in ("root", "0", "0:0")
    for name, rest in dockerfile:
        if name == "COPY":
            *sources, _ = rest.split()
            assert all((ROOT / source).exists() for source in sources), rest
    # every package the project installs is copied into the image
    packages = {"domain", "application", "projections", "adapters", "api", "loraledger"}
    copied = {rest.split()[0] for name, rest in dockerfile if name == "COPY"}
    assert packages <= copied, packages - copied


def test_cmd_serves_and_the_health_check_passes_then_fails_once_it_stops(
    dockerfile: list[tuple[str, str]], tmp_path: Path
) -> None:
    command: list[str] = json.loads(only(dockerfile, "CMD"))
    health = only(dockerfile, "HEALTHCHECK")
    check: list[str] = json.loads(health[health.index("CMD") + 3 :].strip())
    assert command[:2] == ["loraledger", "serve"] and check[0] == "python"
    assert f"--port {only(dockerfile, 'EXPOSE')}" in " ".join(command)

    # The image's ENV, its /data volume in a folder of ours, a free port instead of 8000.
    port = str(free_port())
    data = tmp_path / "data"
    (data / "styles").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    env |= {k: v.replace(IMAGE_DATA, str(data)) for k, v in image_env(dockerfile).items()}
    served = [port if part == "8000" else part for part in command[1:]]
    checker = [sys.executable, *(part.replace(":8000/", f":{port}/") for part in check[1:])]
    assert checker != [sys.executable, *check[1:]], "the health check does not ask the served port"

    server = subprocess.Popen(
        loraledger_command(*served),  # `loraledger`: the installed package's entry point
        cwd=data,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        healthy = subprocess.run(checker, env=env, capture_output=True, timeout=10, check=False)
        while healthy.returncode != 0 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
            healthy = subprocess.run(checker, env=env, capture_output=True, timeout=10, check=False)
        assert healthy.returncode == 0, (healthy.stderr, server.poll())
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    # uvicorn shuts down cleanly, then ends by the signal it got (as `docker stop` expects)
    assert server.returncode in (0, -signal.SIGTERM), stderr.decode()
    assert "Application shutdown complete." in stderr.decode()
    lines = stderr.decode().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)  # the image logs JSON
    assert (data / "loraledger.db").exists()  # the store lives in the volume

    stopped = subprocess.run(checker, env=env, capture_output=True, timeout=10, check=False)
    assert stopped.returncode != 0


def test_compose_runs_the_service_on_its_postgresql_with_settings_loraledger_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    service, database = compose["services"]["loraledger"], compose["services"]["postgres"]
    assert service["build"] == "."
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert database["image"].startswith("postgres:") and database["healthcheck"]
    url = service["environment"]["LORALEDGER_DATABASE_URL"]
    db = database["environment"]
    assert url == (
        f"postgresql://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@postgres:5432/{db['POSTGRES_DB']}"
    )
    for name in list(os.environ):
        if name.startswith("LORALEDGER_"):
            monkeypatch.delenv(name)
    for name, value in service["environment"].items():  # `${NAME:-default}` as compose fills it in
        monkeypatch.setenv(name, re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value)))
    settings = load_settings(_env_file=None)
    assert settings.database_url == url and settings.output_dir == "/data/styles"
    assert service["command"][:2] == ["loraledger", "serve"]
