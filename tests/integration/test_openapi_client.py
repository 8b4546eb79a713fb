"""A TypeScript client generated from the app's `/openapi.json` (openapi-typescript) type-checks
typed uses of the answers (`tsc --strict`), and a wrong use does not.

Needs node and npm (CI has node 20): the test fails, not skips, without them. The two npm packages
are installed once into `.cache/openapi-client/` at the repository root (gitignored) and reused.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from loraledger.api.http import create_app
from loraledger.api.settings import Settings

with warnings.catch_warnings():  # starlette's testclient warns that httpx is deprecated there
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("LORALEDGER_OPENAPI_TOOLS", ROOT / ".cache" / "openapi-client"))
PACKAGES = ("openapi-typescript@7", "typescript@5")
NPM_TIMEOUT = 300

TYPED_USES = """\
import type { components, operations, paths } from "./schema";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Started = Json<operations["startTraining"]["responses"][201]>;
type History = Json<paths["/styles/{style_id}/versions/{name}/history"]["get"]["responses"][200]>;
type Webhook = Json<operations["receiveRunpodWebhook"]["responses"][202]>;
type Report = Json<operations["syncS3"]["responses"][200]>;
type Missing = Json<operations["getTrainingVersions"]["responses"][404]>;
type Refused = Json<operations["annotateVersion"]["responses"][422]>;
type Document = Json<operations["getTrainingVersions"]["responses"][200]>;

export function statusOf(started: Started): "pending" | "completed" | "failed" {
  return started.status;
}

export function firstRule(history: History): string | undefined {
  return history.events[0].decision?.rule;
}

export function takenIds(answer: Webhook): (string | null)[] {
  return answer.decisions.flatMap((d) => d.candidates.filter((c) => c.taken).map((c) => c.id));
}

export function skippedKeys(report: Report): string[] {
  return report.skipped.map((s) => s.key).concat(report.backups);
}

export function why(error: Missing, refused: Refused): string {
  const detail = refused.detail;
  return typeof detail === "string" ? detail : error.detail + detail.map((d) => d.msg).join();
}

export function userFields(document: Document): unknown[] {
  return document.versions.map((v) => v["selectionSetId"] ?? v.loraUrl ?? v.name);
}

export const decisionSources: components["schemas"]["Decision"]["source"][] = ["webhook", "s3-sync"];
"""

# Each line is a deliberate type error that tsc must report (on that line).
WRONG_USES = """\
import type { operations } from "./schema";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Started = Json<operations["startTraining"]["responses"][201]>;
type History = Json<operations["getVersionHistory"]["responses"][200]>;
type Health = Json<operations["healthz"]["responses"][200]>;
export const asNumber = (started: Started): number => started.status;
export const notThere = (started: Started): string => started.stauts;
export const unchecked = (history: History): string => history.events[0].decision.rule;
export const badHealth: Health = { status: "fine" };
"""
WRONG_LINES = {7, 8, 9, 10}


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """openapi-typescript and tsc, installed once (under a lock: pytest runs may overlap)."""
    missing = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found on PATH: this test needs Node.js 20 and npm "
            "to generate and type-check the TypeScript client",
            pytrace=False,
        )
    TOOLS.mkdir(parents=True, exist_ok=True)
    wanted = " ".join(PACKAGES)
    with (TOOLS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = TOOLS / ".installed"
        bins = [TOOLS / "node_modules" / ".bin" / name for name in ("openapi-typescript", "tsc")]
        if not (marker.is_file() and marker.read_text() == wanted and all(b.exists() for b in bins)):
            installed = _run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(TOOLS),
                    "--no-audit",
                    "--no-fund",
                    "--prefer-offline",
                    "--loglevel=error",
                    *PACKAGES,
                ],
                cwd=TOOLS,
                timeout=NPM_TIMEOUT,
            )
            if installed.returncode != 0:
                pytest.fail(
                    f"npm install {wanted} failed:\n{installed.stdout}{installed.stderr}", pytrace=False
                )
            marker.write_text(wanted)
    return TOOLS


@pytest.fixture
def client_folder(tmp_path: Path, npm_tools: Path) -> Path:
    """The app's /openapi.json, and the TypeScript types openapi-typescript generates from it."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", output_dir=str(tmp_path)))
    answer = TestClient(app).get("/openapi.json")
    assert answer.status_code == 200, answer.text
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(answer.json(), indent=2))
    generated = _run(
        ["npx", "--no-install", "openapi-typescript", str(schema_file), "-o", str(tmp_path / "schema.d.ts")],
        cwd=npm_tools,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return tmp_path


def _tsc(folder: Path, tools: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return _run(
        [
            "npx",
            "--no-install",
            "tsc",
            "--noEmit",
            "--strict",
            "--target",
            "es2022",
            "--pretty",
            "false",
            *(str(folder / name) for name in files),
        ],
        cwd=tools,
        timeout=120,
    )


def test_typed_uses_of_the_generated_client_type_check_and_wrong_ones_do_not(
    client_folder: Path, npm_tools: Path
) -> None:
    (client_folder / "typed.ts").write_text(TYPED_USES)
    (client_folder / "wrong.ts").write_text(WRONG_USES)
    result = _tsc(client_folder, npm_tools, "typed.ts", "wrong.ts")
    output = result.stdout + result.stderr
    reported = re.findall(r"^(.*?\.ts)\((\d+),\d+\): error (TS\d+)", output, flags=re.MULTILINE)
    assert reported, output
    assert {Path(file).name for file, _, _ in reported} == {"wrong.ts"}, output
    assert {int(line) for _, line, _ in reported} == WRONG_LINES, output
    assert result.returncode != 0
