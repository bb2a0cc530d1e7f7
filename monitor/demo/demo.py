"""`monitor demo`: the whole pipeline offline, on loopback, on bundled sample feeds.

The bundled outlets (monitor/data/demo/) are served by a small HTTP server on a port the OS
picks, with ETag and Last-Modified so the second poll shows conditional GET at work. The demo
writes its own rules folder (`<dir>/demo/rules/feeds.yaml`, pointing at that server) and
database (`<dir>/demo.db`), so every other command can be tried on the result. Its alert rules
are the user's (`--rules`), or the default pack installed with monitor when there are none, so
the demo works from any directory.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from monitor.cli.report import cycle
from monitor.demo.receivers import DemoSmtp, DemoWebhook, Hook, new_secret
from monitor.demo.stories import story_lines
from monitor.demo.surges import SURGE_ROUTE, surge_lines
from monitor.digest.channels import load_channels
from monitor.digest.dispatch import freeze_route, send_due
from monitor.digest.render.email import email_part
from monitor.digest.surges import detect, freeze_surges
from monitor.ingest.feeds import load_feeds
from monitor.ingest.poll import poll_cycle
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import CycleSummary, Feed, Settings
from monitor.store import Store

Echo = Callable[[str], None]
DEMO_SETTINGS = Settings(connect_timeout=2.0, read_timeout=5.0, total_timeout=10.0)
# The first day of the bundled crisis week (monitor/data/demo/README.md).
DEMO_WEEK_START = datetime(2025, 11, 20, tzinfo=UTC)
# A fixed validator date: the bundled files never change while the demo runs.
LAST_MODIFIED = email.utils.formatdate(1765000000, usegmt=True)


def demo_settings(now: datetime) -> Settings:
    """The demo's fetch settings. Its sample week lies in the past, and a real first poll keeps
    old news as history (stored, never sent): the demo counts the whole week as fresh, so that
    it can show alerts being delivered whenever it runs."""
    fresh = now - DEMO_WEEK_START + timedelta(days=1)
    return replace(DEMO_SETTINGS, first_poll_grace=fresh, alert_max_age=fresh)


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
    broken: str | None = None  # why this outlet is broken on purpose

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
            broken=o.get("broken"),
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
    # What the local receivers got, written to files, each with a note ("" or a webhook's
    # signature check).
    saved: tuple[tuple[Path, str], ...] = ()
    broken: Mapping[str, str] = field(default_factory=dict)  # outlet id -> why, on purpose
    surges: tuple[str, ...] = ()  # lines telling what surged
    stories: tuple[str, ...] = ()  # lines telling how the reports make stories


CHANNELS = (
    """\
# Written by `monitor demo`: its local SMTP server and webhook receiver (gone when it ends).
receivers:
  - id: desk
    email:
      to: [crisis-desk@example.org]
      from: monitor@example.org
      smtp: {{host: 127.0.0.1, port: {smtp_port}, tls: none}}
  - id: ops
    webhook: {{url: "{hook_url}", secret_env: DEMO_HOOK_SECRET}}
routes:
  - id: desk-urgent
    receiver: desk
    match: {{severity: [high, critical]}}
    schedule: immediate
    timezone: Asia/Tokyo
    group_by: [rule]
  - id: ops-all
    receiver: ops
    schedule: immediate
    group_by: [region]
    max_items: 100
"""
    + SURGE_ROUTE
)


def copy_rules(source: Path, target: Path) -> tuple[int, str]:
    """The user's alert rules and region overrides, copied for the demo, or the rule pack
    installed with monitor when `source` has no rules (the demo run from any directory):
    (how many rule files, where they came from)."""
    (target / "alerts").mkdir(parents=True, exist_ok=True)
    for old in (target / "alerts").glob("*.yaml"):
        old.unlink()
    files: Sequence[Traversable] = sorted((source / "alerts").glob("*.yaml"))
    origin = str(source / "alerts")
    if not files:
        pack = resources.files("monitor") / "data" / "rules" / "alerts"
        files = sorted((f for f in pack.iterdir() if f.name.endswith(".yaml")), key=_name)
        origin = f"the default rule pack installed with monitor ({origin} has none)"
    for file in files:
        (target / "alerts" / file.name).write_bytes(file.read_bytes())
    if (source / "regions.yaml").exists():
        shutil.copyfile(source / "regions.yaml", target / "regions.yaml")
    return len(files), origin


def _name(file: Traversable) -> str:
    return file.name


def run_demo(out_dir: Path, rules_source: Path, echo: Echo) -> None:
    outlets = load_outlets()
    rules_dir = out_dir / "demo" / "rules"
    db_path = out_dir / "demo.db"
    for stale in (db_path, db_path.with_suffix(".db-wal"), db_path.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)  # a demo always starts from an empty database
    rule_files, origin = copy_rules(rules_source, rules_dir)
    ruleset = load_ruleset(rules_dir)
    echo(f"{len(ruleset.rules)} alert rules from {rule_files} files in {origin}")
    settings = demo_settings(datetime.now(UTC))
    with serve(outlets) as base:
        write_feeds_yaml(rules_dir / "feeds.yaml", outlets, base)
        feeds = load_feeds(rules_dir / "feeds.yaml").feeds
        broken = {o.id: o.broken for o in outlets if o.broken}
        echo(f"serving {len(outlets)} sample outlets on {base} ({len(broken)} broken on purpose)")
        with Store(db_path) as store:
            cold = asyncio.run(poll_cycle(feeds, store, settings, ruleset=ruleset))
            warm = asyncio.run(poll_cycle(feeds, store, settings, force=True, ruleset=ruleset))
            saved = deliver(store, rules_dir, ruleset, feeds, out_dir / "demo", settings)
            result = DemoResult(
                cold=cold,
                warm=warm,
                langs=Counter(s.item.lang or "?" for s in store.search(None, limit=100_000)),
                total=store.count_items(),
                per_rule=store.match_counts(),
                per_region=store.region_counts(),
                saved=saved,
                broken=broken,
                surges=tuple(surge_lines(store)),
                stories=tuple(story_lines(store)),
            )
    _print_report(echo, result, ruleset, rules_dir, db_path)


def deliver(
    store: Store,
    rules_dir: Path,
    ruleset: RuleSet,
    feeds: Sequence[Feed],
    folder: Path,
    settings: Settings = DEMO_SETTINGS,
) -> tuple[tuple[Path, str], ...]:
    """Digests of every route to a local SMTP server and webhook receiver; saves what came."""
    secret = new_secret()
    with DemoSmtp() as smtp, DemoWebhook(secret) as hook:
        path = rules_dir / "channels.yaml"
        path.write_text(CHANNELS.format(smtp_port=smtp.port, hook_url=hook.url), "utf-8")
        channels = load_channels(path, {r.id for r in ruleset.rules}, ruleset.gazetteer.codes)
        rules = {r.id: r for r in ruleset.rules}
        now = datetime.now(UTC)
        for route in channels.routes:
            freeze_route(store, route, channels, rules, {f.id: f for f in feeds}, now)
        detect(store, channels, settings, now)  # as the service does after a poll
        freeze_surges(store, channels, rules, {f.id: f for f in feeds}, now)
        asyncio.run(send_due(store, channels, {"DEMO_HOOK_SECRET": secret}, now))
    return save_received(folder, smtp.messages, hook.hooks)


def save_received(
    folder: Path, mails: Sequence[bytes], hooks: Sequence[Hook]
) -> tuple[tuple[Path, str], ...]:
    """Write what the receivers got; each file with a note for the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in [
        *folder.glob("digest-*.eml"),
        *folder.glob("digest-*.html"),
        *folder.glob("webhook-*.json"),
    ]:
        old.unlink()
    saved: list[tuple[Path, str]] = []
    for n, raw in enumerate(mails, start=1):
        (folder / f"digest-{n}.eml").write_bytes(raw)
        saved.append((folder / f"digest-{n}.eml", ""))
        html = email_part(raw, "html")
        if html is not None:
            (folder / f"digest-{n}.html").write_text(html, encoding="utf-8")
            saved.append((folder / f"digest-{n}.html", ""))
    for n, hook in enumerate(hooks, start=1):
        (folder / f"webhook-{n}.json").write_bytes(hook.body)
        state = "signature verified" if hook.verified else "SIGNATURE INVALID"
        saved.append((folder / f"webhook-{n}.json", state))
    return tuple(saved)


def _print_report(
    echo: Echo, result: DemoResult, ruleset: RuleSet, rules_dir: Path, db_path: Path
) -> None:
    echo("\nfirst poll (empty database):")
    echo(_indent(_cycle(result.cold, result.broken)))
    echo("second poll (nothing changed: conditional GET, no parsing):")
    echo(_indent(_cycle(result.warm, result.broken)))
    by_lang = ", ".join(f"{lang} {n}" for lang, n in sorted(result.langs.items()))
    echo(f"\n{result.total} items stored in {db_path} ({by_lang})")
    echo("\nitems matched per alert rule:")
    for rule in sorted(ruleset.rules, key=lambda r: (-result.per_rule.get(r.id, 0), r.id)):
        echo(f"  {result.per_rule.get(rule.id, 0):4d}  {rule.id} [{rule.severity}]")
    top = sorted(result.per_region.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    echo("\nitems per region (top 12):")
    echo("  " + ", ".join(f"{code} {n}" for code, n in top))
    if result.stories:
        echo("\n" + "\n".join(result.stories))
    if result.surges:
        echo("\n" + "\n".join(result.surges))
    if result.saved:
        echo("\ndigests delivered to the local SMTP server and webhook receiver, saved as:")
        for path, note in result.saved:
            echo(f"  {path} ({note})" if note else f"  {path}")
    opts = f"--rules {rules_dir} --db {db_path}"
    echo("\nlook at the results:")
    echo(f"  monitor {opts} status")
    echo(f"  monitor {opts} digest preview --html /tmp/digest.html")
    echo(f"  monitor {opts} stories")
    echo(f"  monitor {opts} items search 台湾")
    echo(f"  monitor {opts} items search --rule korea-missiles")
    echo(f"  monitor {opts} items search --region KP --json")
    echo(f"  monitor {opts} rules test --since 365d --rule china-japan-row")
    # The sample week lies in the past: the console's link shows every story, not the last 7d.
    echo(f"  monitor {opts} web        # then open http://127.0.0.1:8322/?since=all")


def _cycle(summary: CycleSummary, broken: Mapping[str, str]) -> str:
    """`monitor poll`'s summary, with each failure in full (the poll summary clips them to a
    line: here they are what the reader should see) and the outlets broken on purpose saying
    so."""
    errors = {o.feed_id: o.error for o in summary.outcomes if o.error}
    counts = replace(summary, outcomes=tuple(replace(o, error=None) for o in summary.outcomes))
    lines = [cycle(counts, datetime.now(UTC))]
    for feed_id, error in sorted(errors.items()):
        why = f" (broken on purpose: {broken[feed_id]})" if feed_id in broken else ""
        lines.append(f"  ! {feed_id}{why}: {' '.join(error.split())}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
