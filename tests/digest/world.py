"""A rules folder, a real store (a SQLite file, then a PostgreSQL database: `db_target`) and
helpers to store matched items and to freeze and send digests, for the delivery tests of this
folder (`world` fixture in conftest.py)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.digest.channels import Channels, load_channels
from monitor.digest.dispatch import freeze_route, send_due
from monitor.match.rule import Hit, Match, Rule
from monitor.match.ruleset import load_ruleset
from monitor.models import Feed, FeedState, Item
from monitor.store import Store
from monitor.store.stories import NewLink

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
ENV = {"HOOK_SECRET": SECRET}
RULES = """\
rules:
  - id: strait
    title: Taiwan Strait military pressure
    severity: critical
    query: '"Taiwan Strait"'
  - id: economy
    title: Economy
    severity: low
    query: economy
"""
NOW = datetime(2025, 12, 2, 9, 0, tzinfo=UTC)


@dataclass
class World:
    store: Store
    rules: dict[str, Rule]
    rules_dir: Path
    db: Path | str  # what `--db` takes: the SQLite file or the PostgreSQL URL

    def add(
        self,
        guid: str,
        title: str,
        rule_ids: Sequence[str],
        feed: str = "wire",
        published: datetime = NOW,
        link: str | None = None,
        *,
        lang: str = "en",
        join: int | None = None,
        linked: bool = True,
    ) -> int:
        """Store an item with matches of these rules, as a poll would; returns its id. The
        poll then links it: to the story of item `join`, else to a new story of its own
        (`linked=False`: left waiting for its story, as between a store and the cycle's end)."""
        item = Item(
            feed_id=feed, guid=guid, link=link or f"https://news.example.org/{guid}",
            title=title, summary=title, html="", author=None, lang=lang,
            published=published, first_seen=published, content_hash=guid, regions=("TW",),
        )  # fmt: skip
        matches = [Match(r, 0.0, (Hit(title, "title", 0, len(title)),)) for r in rule_ids]
        self.store.save_items(
            feed, [item], FeedState(feed_id=feed, url="http://x"), lambda i: (i, matches)
        )
        [row] = self.store._rows(
            "SELECT id FROM items WHERE feed_id = ? AND guid = ?", (feed, guid)
        )
        item_id = int(row["id"])
        if linked:
            story = self.store.item_stories([join])[join] if join is not None else -1
            self.store.save_links([NewLink(item_id, story, 1.0, ("test",))])
        return item_id

    def story(self, item_id: int) -> int:
        return self.store.item_stories([item_id])[item_id]

    def mark_history(self, item_id: int) -> None:
        """What ingest does to an item that was old news when first seen."""
        with self.store._write() as conn:
            conn.execute("UPDATE matches SET history = 1 WHERE item_id = ?", (item_id,))

    def channels(self, text: str) -> Channels:
        path = self.rules_dir / "channels.yaml"
        path.write_text(text, encoding="utf-8")
        return load_channels(path, self.rules)

    def freeze(
        self, channels: Channels, now: datetime = NOW, feeds: Mapping[str, Feed] | None = None
    ) -> str | None:
        frozen = [
            freeze_route(self.store, r, channels, self.rules, feeds or {}, now)
            for r in channels.routes
        ]
        ids = [f.id for f in frozen if f is not None]
        return ids[0] if ids else None


@contextmanager
def make_world(tmp_path: Path, db: Path | str | None = None) -> Iterator[World]:
    """A world on `db` (a SQLite file or a PostgreSQL URL), by default a new file."""
    rules_dir = tmp_path / "rules"
    (rules_dir / "alerts").mkdir(parents=True)
    (rules_dir / "alerts" / "asia.yaml").write_text(RULES, encoding="utf-8")
    rules = {r.id: r for r in load_ruleset(rules_dir).rules}
    db = tmp_path / "state" / "monitor.db" if db is None else db
    with Store(db) as store:
        yield World(store, rules, rules_dir, db)


def email_channels(port: int, extra: str = "") -> str:
    return f"""\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: monitor@example.org,
            smtp: {{host: 127.0.0.1, port: {port}, tls: none}}}}
routes:
  - id: desk-now
    receiver: desk
    schedule: immediate
{extra}"""


def hook_channels(url: str, extra: str = "") -> str:
    return f"""\
receivers:
  - id: ops
    webhook: {{url: "{url}", secret_env: HOOK_SECRET}}
routes:
  - id: ops-now
    receiver: ops
{extra}"""


def send(world: World, channels: Channels, now: datetime = NOW) -> list[bool]:
    return [r.ok for _, r in asyncio.run(send_due(world.store, channels, ENV, now))]
