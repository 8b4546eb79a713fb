"""The sync of the system being replaced (`ui/config/utils/s3-lora-sync.ts`), re-implemented from its
design note (/work/shared/seed/training-version-naming.md, "S3 Sync" and "Matching Logic"):

For each S3 file, in listing order: read the style's whole `training_versions.json`, parse it,
first pass (an entry named like the file's version whose status is pending or failed, or that has no
loraUrl), else second pass (loraUrl contains the file name, or name is the file name, or id is the
model name), update it or append a new "Synced from S3" entry, and write the whole file back as
`JSON.stringify(data, null, 2)`. That is O(entries) parsing and writing per file: O(files x entries)
per style.

It is given the fastest JSON library at hand (orjson, with the same two-space layout, when installed;
else the standard library), and writes without fsync as Node's `fs.writeFileSync` does, so the old
algorithm is if anything measured faster than it ran.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2)

    JSON_LIBRARY = f"orjson {orjson.__version__}"
except ImportError:  # pragma: no cover - depends on the environment
    import json

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, indent=2, ensure_ascii=False).encode()

    JSON_LIBRARY = "json (standard library)"

_FILE = re.compile(r"^style_(\d+)_v(.+)\.safetensors$")
DOCUMENT = "training_versions.json"


@dataclass(slots=True)
class OldSyncResult:
    files: int = 0
    matched_pending: int = 0
    matched_synced: int = 0
    created: int = 0
    seconds: float = 0.0


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def old_sync(
    objects: Sequence[tuple[str, str]],
    output_dir: Path,
    url_base: str,
    *,
    path_for: Callable[[Path, str], Path] | None = None,
) -> OldSyncResult:
    """Apply the old per-file algorithm to `(key, lastModified ISO)` pairs; files under `output_dir`."""
    result = OldSyncResult()
    start = time.perf_counter()
    for key, last_modified in objects:
        file_name = key.rsplit("/", 1)[-1]
        match = _FILE.match(file_name)
        if match is None:
            continue
        style_id, version_part = match.groups()
        # "Extracts version: style_1_vV8.safetensors -> V8"
        version_name = version_part if version_part[:1] in ("V", "v") else f"V{version_part}"
        version_name = "V" + version_name[1:]
        model_name = file_name[: -len(".safetensors")]
        path = path_for(output_dir, style_id) if path_for else output_dir / style_id / DOCUMENT
        try:
            data = _loads(path.read_bytes())
        except FileNotFoundError:
            data = {"versions": []}
        versions: list[dict[str, Any]] = data.setdefault("versions", [])
        url = url_base + key
        result.files += 1

        # First pass: pending/failed versions (or without a loraUrl) by name.
        target = next(
            (
                v
                for v in versions
                if v.get("name") == version_name
                and (v.get("status") in ("pending", "failed") or not v.get("loraUrl"))
            ),
            None,
        )
        if target is not None:
            target["status"] = "completed"
            target["loraUrl"] = url
            target["lastSynced"] = _now_iso()
            result.matched_pending += 1
        else:
            # Second pass: already-synced versions.
            target = next(
                (
                    v
                    for v in versions
                    if (v.get("loraUrl") and file_name in v["loraUrl"])
                    or v.get("name") == file_name
                    or v.get("id") == model_name
                ),
                None,
            )
            if target is not None:
                target["loraUrl"] = url
                target["lastSynced"] = _now_iso()
                result.matched_synced += 1
            else:
                versions.append(
                    {
                        "id": model_name,
                        "name": version_name,
                        "description": "Synced from S3",
                        "timestamp": last_modified,
                        "parameters": {},
                        "status": "completed",
                        "loraUrl": url,
                        "lastSynced": _now_iso(),
                    }
                )
                result.created += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_dumps(data))
    result.seconds = time.perf_counter() - start
    return result
