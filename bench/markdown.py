"""Print the latest results (bench/results/*.json) as Markdown tables, for BENCHMARKS.md.

`python -m bench.markdown [cli sync import webhooks history rebuild summary]`
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.common import RESULTS, fmt


def table(columns: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render(name: str) -> str:
    document = json.loads((RESULTS / f"{name}.json").read_text())
    parts = [f"### {document['title']}", "", table(document["columns"], document["rows"])]
    for extra in document.get("extra_tables", []):
        parts += ["", f"**{extra['title']}**", "", table(extra["columns"], extra["rows"])]
    if document["targets"] and name != "summary":
        parts += [
            "",
            table(
                ["target", "limit", "measured", "verdict"],
                [[t["name"], t["limit"], t["measured"], f"**{t['verdict']}**"] for t in document["targets"]],
            ),
        ]
    parts += [""] + [f"- {note}" for note in document.get("notes", [])]
    return "\n".join(parts)


def main() -> None:
    names = sys.argv[1:] or ["cli", "sync", "import", "webhooks", "history", "rebuild", "summary"]
    for name in names:
        if (RESULTS / f"{name}.json").exists():
            print(render(name))
            print()


if __name__ == "__main__":
    main()
