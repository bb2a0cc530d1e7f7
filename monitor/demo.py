"""`monitor demo`: the whole pipeline offline, on loopback, on bundled sample feeds.

The bundled outlets (monitor/data/demo/) are served by a small HTTP server on a port the OS
picks, with ETag and Last-Modified so the second poll shows conditional GET at work. The demo
writes its own rules folder (`<dir>/demo/rules/feeds.yaml`, pointing at that server) and
database (`<dir>/demo.db`), so every other command can be tried on the result.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from monitor.config import load_feeds
from monitor.models import CycleSummary, Settings
from monitor.poll import poll_cycle
from monitor.report import cycle
from monitor.ruleset import RuleSet, load_ruleset
from monitor.store import Store

Echo = Callable[[str], None]
DEMO_SETTINGS = Settings(connect_timeout=2.0, read_timeout=5.0, total_timeout=10.0)
# A fixed validator date: the bundled files never change while the demo runs.
LAST_MODIFIED = email.utils.formatdate(1765000000, usegmt=True)


@dataclass(frozen=True)
class Outlet:
    id: str
    title: str
    body: bytes
    content_type: str
    lang: str
    tags: tuple[str, ...]
    regions: tuple[str, ...]
    interval: str

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


def load_outlets() -> list[Outlet]:
    """The bundled outlets, as listed in monitor/data/demo/outlets.yaml."""
    folder = resources.files("monitor") / "data" / "demo"
    spec = YAML(typ="safe").load(folder.joinpath("outlets.yaml").read_text(encoding="utf-8"))
    return [
        Outlet(
            id=o["id"],
            title=o["title"],
            body=folder.joinpath(o["file"]).read_bytes(),
            content_type=o["content_type"],
            lang=o["lang"],
            tags=tuple(o.get("tags", ())),
            regions=tuple(o.get("regions", ())),
            interval=str(o.get("interval", "15m")),
        )
        for o in spec["outlets"]
    ]


def _handler(outlets: dict[str, Outlet]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            outlet = outlets.get(self.path.removeprefix("/feeds/"))
            if outlet is None:
                self.send_error(404)
                return
            if self.headers.get("If-None-Match") == outlet.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", outlet.content_type)
            self.send_header("Content-Length", str(len(outlet.body)))
            self.send_header("ETag", outlet.etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            self.wfile.write(outlet.body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own
            pass

    return Handler


@contextmanager
def serve(outlets: list[Outlet]) -> Iterator[str]:
    """Serve the outlets on 127.0.0.1, a free port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler({o.id: o for o in outlets}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_feeds_yaml(path: Path, outlets: list[Outlet], base: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    feeds = [
        {
            "id": o.id,
            "url": f"{base}/feeds/{o.id}",
            "title": o.title,
            "tags": list(o.tags),
            "regions": list(o.regions),
            "interval": o.interval,
        }
        for o in outlets
    ]
    with path.open("w", encoding="utf-8") as out:
        out.write("# Written by `monitor demo`: the bundled outlets, served on loopback.\n")
        YAML().dump({"feeds": feeds}, out)


@dataclass(frozen=True)
class DemoResult:
    cold: CycleSummary
    warm: CycleSummary
    langs: Counter[str]
    total: int
    per_rule: dict[str, int]
    per_region: dict[str, int]


def copy_rules(source: Path, target: Path) -> int:
    """The user's alert rules and region overrides, copied for the demo; how many rule files."""
    (target / "alerts").mkdir(parents=True, exist_ok=True)
    for old in (target / "alerts").glob("*.yaml"):
        old.unlink()
    files = sorted((source / "alerts").glob("*.yaml"))
    for file in files:
        shutil.copyfile(file, target / "alerts" / file.name)
    if (source / "regions.yaml").exists():
        shutil.copyfile(source / "regions.yaml", target / "regions.yaml")
    return len(files)


def run_demo(out_dir: Path, rules_source: Path, echo: Echo) -> None:
    outlets = load_outlets()
    rules_dir = out_dir / "demo" / "rules"
    db_path = out_dir / "demo.db"
    for stale in (db_path, db_path.with_suffix(".db-wal"), db_path.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)  # a demo always starts from an empty database
    rule_files = copy_rules(rules_source, rules_dir)
    ruleset = load_ruleset(rules_dir)
    echo(f"{len(ruleset.rules)} alert rules from {rule_files} files in {rules_source / 'alerts'}")
    with serve(outlets) as base:
        write_feeds_yaml(rules_dir / "feeds.yaml", outlets, base)
        feeds = load_feeds(rules_dir / "feeds.yaml").feeds
        echo(f"serving {len(outlets)} sample outlets on {base}")
        with Store(db_path) as store:
            cold = asyncio.run(poll_cycle(feeds, store, DEMO_SETTINGS, ruleset=ruleset))
            warm = asyncio.run(poll_cycle(feeds, store, DEMO_SETTINGS, force=True, ruleset=ruleset))
            result = DemoResult(
                cold=cold,
                warm=warm,
                langs=Counter(s.item.lang or "?" for s in store.search(None, limit=100_000)),
                total=store.count_items(),
                per_rule=store.match_counts(),
                per_region=store.region_counts(),
            )
    _print_report(echo, result, ruleset, rules_dir, db_path)


def _print_report(
    echo: Echo, result: DemoResult, ruleset: RuleSet, rules_dir: Path, db_path: Path
) -> None:
    echo("\nfirst poll (empty database):")
    echo(_indent(cycle(result.cold)))
    echo("second poll (nothing changed: conditional GET, no parsing):")
    echo(_indent(cycle(result.warm)))
    by_lang = ", ".join(f"{lang} {n}" for lang, n in sorted(result.langs.items()))
    echo(f"\n{result.total} items stored in {db_path} ({by_lang})")
    echo("\nitems matched per alert rule:")
    for rule in sorted(ruleset.rules, key=lambda r: (-result.per_rule.get(r.id, 0), r.id)):
        echo(f"  {result.per_rule.get(rule.id, 0):4d}  {rule.id} [{rule.severity}]")
    top = sorted(result.per_region.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    echo("\nitems per region (top 12):")
    echo("  " + ", ".join(f"{code} {n}" for code, n in top))
    opts = f"--rules {rules_dir} --db {db_path}"
    echo("\nlook at the results:")
    echo(f"  monitor {opts} status")
    echo(f"  monitor {opts} items search 台湾")
    echo(f"  monitor {opts} items search --rule korea-missiles")
    echo(f"  monitor {opts} items search --region KP --json")
    echo(f"  monitor {opts} rules test --since 365d --rule china-japan-row")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
