"""The layering of docs/ARCHITECTURE.md where import-linter cannot see it (its contracts are in
pyproject.toml and run by tests/test_code_quality.py): what the domain calls, what the edges
read from the facade, and how long a module may grow."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "application", "adapters", "projections", "api")
EDGES = ("api/http.py", "api/cli.py", "api/cli_support.py", "api/operating.py", "api/pages.py")
MAX_LINES = 350
LONG_REASON = "Over 350 lines because"
# What the domain may not import from eventsourcing: its stores and repositories (I/O).
DOMAIN_FORBIDDEN_IMPORTS = ("eventsourcing.application", "eventsourcing.persistence")
# The facade's parts: an edge that reads them has gone around the facade's methods.
FACADE_PARTS = frozenset({"ledger", "projection", "files", "clients", "runner", "writer"})

# Modules still waiting for their split. Strict: each is noticed once it holds.
NOT_PURE_YET: dict[str, str] = {}
TOO_LONG_YET: dict[str, str] = {}


def modules(*folders: str) -> list[str]:
    return sorted(str(path.relative_to(ROOT)) for folder in folders for path in (ROOT / folder).glob("*.py"))


def tree(relative: str) -> ast.Module:
    return ast.parse((ROOT / relative).read_text(encoding="utf-8"), filename=relative)


def pending(relative: str, waiting: dict[str, str]) -> object:
    """`relative` as a test parameter, expected to fail while it is `waiting`."""
    if relative in waiting:
        return pytest.param(relative, marks=pytest.mark.xfail(strict=True, reason=waiting[relative]))
    return relative


def imported_modules(module: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def calls(module: ast.Module) -> Iterator[tuple[int, str]]:
    """Each call's name: `open` for `open(...)`, `.now` for `x.now(...)`."""
    for node in ast.walk(module):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                yield node.lineno, node.func.id
            elif isinstance(node.func, ast.Attribute):
                yield node.lineno, f".{node.func.attr}"


@pytest.mark.parametrize(
    "relative", [pending(m, NOT_PURE_YET) for m in modules("domain") if m != "domain/__init__.py"]
)
def test_the_domain_reads_no_store_no_clock_no_random_id_and_no_file(relative: str) -> None:
    module = tree(relative)
    found = [
        f"line {line}: imports {name}"
        for line, name in imported_modules(module)
        if name.startswith(DOMAIN_FORBIDDEN_IMPORTS)
    ]
    found += [
        f"line {line}: calls {name}()"
        for line, name in calls(module)
        if name in ("open", "uuid4", ".uuid4", ".now", ".utcnow", ".today")
    ]
    assert found == []


@pytest.mark.parametrize("relative", EDGES)
def test_routes_and_commands_do_not_reach_through_the_facade(relative: str) -> None:
    found = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree(relative))
        if isinstance(node, ast.Attribute) and node.attr in FACADE_PARTS
    ]
    assert found == [], "call a facade method (api/facade.py) instead"


@pytest.mark.parametrize("relative", [pending(m, TOO_LONG_YET) for m in modules(*PACKAGES, "loraledger")])
def test_no_package_module_is_over_350_lines_without_a_reason_at_its_top(relative: str) -> None:
    text = (ROOT / relative).read_text(encoding="utf-8")
    lines = text.count("\n") + (not text.endswith("\n"))
    docstring = ast.get_docstring(tree(relative)) or ""
    reason = any(line.startswith(LONG_REASON) for line in docstring.splitlines())
    assert lines <= MAX_LINES or reason, f"{relative} has {lines} lines; split it or say why at its top"


def test_the_checks_see_every_package() -> None:
    """A package folder that moved or was renamed would make the checks above pass on nothing."""
    found = {m.split("/")[0] for m in modules(*PACKAGES)}
    assert found >= {"domain", "adapters", "projections", "api"}
    assert "api/facade.py" in modules("api") and "api/bootstrap.py" in modules("api")
