"""The CLI answers at once: a command loads only the modules it needs.

Each test runs the command in a fresh Python process (a real one: `sys.modules` of this test
process has everything loaded already) and reads back which modules were imported. Names, not
times: a heavy import that creeps back into `monitor --help` fails here on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Run `monitor ARGS...` as `python -m monitor` runs it, then print the loaded modules as JSON
# on the last line of stdout (after whatever the command printed).
PROBE = """
import json, runpy, sys
sys.argv = ["monitor", *sys.argv[1:]]
try:
    runpy.run_module("monitor", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
print()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# The database, network, feed parsing, YAML, templates, scheduling, delivery and the matching
# engine with its gazetteer: each is tens of milliseconds to import.
HEAVY = (
    "sqlite3",
    "sqlite_utils",
    "httpx",
    "httpcore",
    "lxml",
    "feedparser",
    "ruamel",
    "jinja2",
    "apscheduler",
    "prometheus_client",
    "aiosmtpd",
    "standardwebhooks",
    "asyncio",
    "email.policy",
    "monitor.models",  # two dozen dataclasses: ~15 ms, a tenth of the start-up
    "monitor.store.core",
    "monitor.ingest.fetch",
    "monitor.ingest.parse",
    "monitor.ingest.poll",
    "monitor.match.regions",
    "monitor.match.ruleset",
    "monitor.match.engine",
    "monitor.digest.dispatch",
    "monitor.service.service",
)


def loaded(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """(what the command printed, the modules it loaded); the command must succeed."""
    paths = ["--rules", str(tmp_path / "rules"), "--db", str(tmp_path / "monitor.db")]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *paths, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed, _, last = done.stdout.rstrip("\n").rpartition("\n")
    report = json.loads(last)
    assert report["code"] in (0, None), done.stderr
    return printed, set(report["modules"])


def heavy_in(modules: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """The heavy modules (or their submodules) in `modules`, but for those `allowed`."""
    return sorted(
        name
        for name in HEAVY
        if name not in allowed and any(m == name or m.startswith(f"{name}.") for m in modules)
    )


def test_help_loads_nothing_heavy(tmp_path: Path) -> None:
    printed, modules = loaded(tmp_path, "--help")
    for command in ("poll", "status", "feeds", "items", "rules", "digest", "run"):
        assert f"  {command} " in printed  # every command listed, with its short help
    assert "monitor.cli.main" in modules  # the probe ran the real command
    assert heavy_in(modules) == []


def test_a_group_help_loads_nothing_heavy(tmp_path: Path) -> None:
    printed, modules = loaded(tmp_path, "feeds", "--help")
    assert "  import " in printed
    assert heavy_in(modules) == []


def test_items_search_loads_only_the_store_and_the_query_parser(tmp_path: Path) -> None:
    printed, modules = loaded(tmp_path, "items", "search", "taiwan", "--json")
    assert printed == ""  # an empty new database: nothing found
    assert {"monitor.store.core", "monitor.store.ftsquery"} <= modules
    # The store needs SQLite; nothing else heavy, and feeds.yaml (YAML) is not read.
    store = ("sqlite3", "sqlite_utils", "monitor.store.core", "monitor.models")
    assert heavy_in(modules, allowed=store) == []
    assert "monitor.ingest.feeds" not in modules


def test_a_tag_search_reads_feeds_yaml(tmp_path: Path) -> None:
    # The one search that needs the YAML loader: tags live in feeds.yaml.
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "feeds.yaml").write_text(
        "feeds:\n  - url: https://example.org/feed.xml\n    tags: [asia]\n", encoding="utf-8"
    )
    _, modules = loaded(tmp_path, "items", "search", "tag:asia", "--json")
    assert "monitor.ingest.feeds" in modules
    assert "ruamel" in modules
