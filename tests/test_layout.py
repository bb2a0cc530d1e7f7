"""The walls of the house: which package may speak SQL, make requests, send mail; no import
circles; no module grown past the size a reader can hold.

Read from the source with `ast`, so an import inside a function or under TYPE_CHECKING counts
as much as one at the top: a lazy import that closes a circle is still a circle.
Expected: every check passes on the tree as it is; each fails with the offending module named.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "monitor"
MAX_LINES = 400

# Third-party or standard modules, and where alone they may be imported (path prefixes).
WALLS = {
    "sqlite3": ("monitor/store/",),
    "sqlite_utils": ("monitor/store/",),
    "psycopg": ("monitor/store/",),  # PostgreSQL, like SQLite, is spoken by the store alone
    "psycopg_pool": ("monitor/store/",),
    "httpx": ("monitor/ingest/fetch.py", "monitor/deliver/"),  # requests in, webhooks out
    "smtplib": ("monitor/deliver/",),
    "aiosmtplib": ("monitor/deliver/",),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "data" in path.relative_to(PACKAGE).parts:
            continue  # build scripts for shipped data, not part of the running service
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names) for every import statement in the file, wherever it stands."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def edges(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the monitor modules it imports (`from pkg import sub` counts as `pkg.sub`)."""
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for module, names in imported(path):
            if not module.startswith("monitor"):
                continue
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            targets = subs or [module]
            graph[name].update(t for t in targets if t in known and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_circle() -> None:
    cycle = find_cycle(edges(modules()))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    # The check above could pass by never finding anything: show it finds a planted circle.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("library", sorted(WALLS))
def test_walls(library: str) -> None:
    allowed = WALLS[library]
    offenders = []
    for path in modules().values():
        where = path.relative_to(ROOT).as_posix()
        uses = any(m.split(".")[0] == library for m, _ in imported(path))
        if uses and not where.startswith(allowed):
            offenders.append(where)
    assert offenders == [], f"{library} may only be imported under {allowed}: {offenders}"


def test_no_module_over_the_limit() -> None:
    too_long = {
        path.relative_to(ROOT).as_posix(): n
        for path in modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"split these along their seams (limit {MAX_LINES} lines)"


def test_each_package_says_what_it_does() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        if init.parent.name == "data":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 15, f"{init.relative_to(ROOT)}: describe the stage"
