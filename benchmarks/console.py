"""The console's pages at 100,000 stored items: how long each takes to answer.

    python -m benchmarks.console                     # build once (cached), time every page
    python -m benchmarks.console --runs 9            # more requests per page
    python -m benchmarks.console --items 20000       # another size (its own cached database)
    python -m benchmarks.console --profile /search   # cProfile of one page's request, top 25

The database: the demo's reports (real outlets writing in English, Japanese, Chinese and
Korean, stored by `monitor demo`'s own pipeline) copied until there are `--items` of them,
each copy 45 minutes older than the one before (a month in all: about 3,200 items a day, so
the pages' 7-day windows hold over 20,000), a copy's reports dated within a day of each other,
its feeds spread over eight replicas of each outlet. Every copy goes through the store's batch
API with the default rules' tagging and matching (regions, entities, matches, as at ingest;
each match then dated when its item came out), and its reports are grouped into stories the
way the demo's linker grouped the originals (one story per copy and original story: tens of
thousands of stories of one to seven reports). A few hundred digests (some dead, some
retrying) fill the deliveries page. It is built once a day into the temporary folder (the
pages look at the last 7 days from now) and reused.

The pages are timed through the real application in-process (Starlette's TestClient: the
whole request path, middleware and templates included, without a socket or uvicorn). Each
figure is the median of `--runs` requests after one to warm up: wall milliseconds, and the
CPU milliseconds of the process (all threads), which contention on a shared machine hardly
moves.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.testclient import TestClient
from starlette.types import ASGIApp

from benchmarks._farm import _EN_WORDS
from monitor.demo.demo import run_demo
from monitor.match.ruleset import load_ruleset
from monitor.models import FeedState, Item, Rendered, StoredItem
from monitor.store import Store
from monitor.store.location import DbLocation
from monitor.store.outbox import Claims, Outbox
from monitor.store.saving import FeedSave
from monitor.store.stories import NewLink
from monitor.web.app import create_app
from monitor.web.config import WebConfig

REPO = Path(__file__).resolve().parents[1]
REPLICAS = 8  # feeds per demo outlet
COPY_EVERY = timedelta(minutes=45)
SPREAD = timedelta(days=1)  # a copy keeps the demo's own spread of times, at most this
RARE = "quetzal"  # in one copy of the demo only: the rare word searched for
PAGE_TARGET, PLAYGROUND_TARGET = 200.0, 500.0  # milliseconds


@dataclass(frozen=True)
class Built:
    db: Path
    rules: Path


def cache_dir(items: int) -> Path:
    day = datetime.now(UTC).strftime("%Y%m%d")
    return Path(tempfile.gettempdir()) / f"monitor-bench-console-{items}-{day}"


# --- building ----------------------------------------------------------------------------------


def _demo_items(work: Path) -> tuple[list[StoredItem], dict[int, tuple[int, tuple[str, ...]]]]:
    """The demo's stored reports, and each one's story and the linker's reasons."""
    run_demo(work, REPO / "rules", echo=lambda _line: None)
    with Store(work / "demo.db") as store:
        items = store.get_items(range(1, 100_000))
        stories = store.item_stories(s.id for s in items)
        why: dict[int, tuple[int, tuple[str, ...]]] = {}
        for story in set(stories.values()):
            for link in store.story_links(story):
                why[link.stored.id] = (story, link.why)
    return [s for s in items if s.id in why], why


def _copy(
    src_id: int, src: Item, k: int, newest: datetime, now: datetime, rng: random.Random
) -> Item:
    when = now - k * COPY_EVERY - max(timedelta(0), min(newest - src.published, SPREAD))
    extra = " ".join(rng.choices(_EN_WORDS, k=8))
    if k == 7:  # one copy's reports: about a hundred items in 100,000
        extra += f" {RARE}"
    return replace(
        src,
        feed_id=f"{src.feed_id}-{k % REPLICAS}",
        guid=f"c{k}-{src_id}-{src.guid}",
        link=f"{src.link or 'https://example.org/'}#c{k}",
        summary=f"{src.summary} {extra}",
        published=when,
        first_seen=when,
        content_hash=f"{src.content_hash}-{k}",
        regions=(),
        entities=(),
    )


def _save_copies(store: Store, items: list[StoredItem], count: int, rules_dir: Path) -> None:
    ruleset = load_ruleset(rules_dir)
    rng, now = random.Random(7), datetime.now(UTC)
    # The end of the demo's sample week (it also has a few reports dated when it ran).
    newest = max(s.item.published for s in items if s.item.published < now - timedelta(days=1))
    copies = -(-count // len(items))
    for first in range(0, copies, 20):
        by_feed: dict[str, list[Item]] = {}
        for k in range(first, min(copies, first + 20)):
            for s in items[: count - k * len(items)]:
                copy = _copy(s.id, s.item, k, newest, now, rng)
                by_feed.setdefault(copy.feed_id, []).append(copy)
        store.save_batch(
            [
                FeedSave(
                    feed,
                    batch,
                    FeedState(feed, f"https://{feed}.example.org/feed", last_success=now),
                    enrich=lambda item: ruleset.enrich(item, None),
                )
                for feed, batch in by_feed.items()
            ]
        )


def _link_copies(store: Store, why: dict[int, tuple[int, tuple[str, ...]]]) -> None:
    """Each copy's reports grouped as the demo's linker grouped the originals (a copy's guid
    is `c<copy>-<original id>-<original guid>`)."""
    while pending := store.pending_stories(5_000):
        links = []
        for s in pending:
            copy, original, _ = s.item.guid.split("-", 2)
            story, reasons = why[int(original)]
            links.append(NewLink(s.id, -(int(copy[1:]) * 100_000 + story), 0.9, reasons))
        store.save_links(links)


def _digests(store: Store, count: int = 300) -> None:
    """`count` digests of ten items each: most delivered, a tenth dead, a tenth retrying."""
    outbox, now = Outbox(store), datetime.now(UTC)
    for n in range(count):
        created = now - timedelta(hours=count - n)
        body = f"Subject: Monitor digest {n}\r\n\r\nten items\r\n".encode()
        rendered = Rendered(
            f"bench-{n:04d}", "email", body, f"Monitor digest {n}", "message/rfc822"
        )
        claims = Claims(listed=tuple(range(n * 10 + 1, n * 10 + 11)))
        outbox.freeze(rendered, "desk-urgent", "desk", claims, created)
        if n % 10 == 3:
            outbox.record_failure(rendered.digest_id, "550 mailbox unavailable", None)
        elif n % 10 == 6:
            retry = now + timedelta(minutes=10)
            outbox.record_failure(rendered.digest_id, "421 try again later", retry)
        else:
            outbox.record_sent(rendered.digest_id, created)


def _stamp_matches(db: Path) -> None:
    """Date each match when its item came out, as a running service would have stored it
    (the store stamps a match with the time it is saved, so a database built at once would
    have a month of matches all in the last hour, and the charts would be one bar)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE matches SET matched_at ="
            " (SELECT i.first_seen FROM items AS i WHERE i.id = matches.item_id)"
        )
    conn.close()


def _feeds_yaml(store: Store, rules: Path) -> None:
    lines = ["# benchmarks.console: the replicated demo outlets (never polled)", "feeds:"]
    for feed in sorted(store.states()):
        lines += [f"  - id: {feed}", f"    url: https://{feed}.example.org/feed"]
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n")


def build(where: Path, count: int) -> Built:
    """The database and rules of `where` (made there unless already whole)."""
    built = Built(where / "console.db", where / "rules")
    if (where / "done").exists():
        return built
    shutil.rmtree(where, ignore_errors=True)
    started = time.process_time()
    items, why = _demo_items(where / "demo")
    shutil.copytree(where / "demo" / "demo" / "rules", built.rules)
    with Store(built.db) as store:
        _save_copies(store, items, count, built.rules)
        _link_copies(store, why)
        _digests(store)
        _feeds_yaml(store, built.rules)
    _stamp_matches(built.db)
    (where / "done").write_text("")
    print(f"built {built.db} ({count:,} items) in {time.process_time() - started:.0f} CPU-s")
    return built


# --- timing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    target: float = PAGE_TARGET


def pages(db: Path) -> list[Page]:
    """Every page, with ids and filters picked from the database: the busiest rule and region,
    the story with most reports, an item from the middle."""
    with Store(db) as store:
        rule = max(store.match_counts().items(), key=lambda kv: kv[1])[0]
        region = max(store.region_counts().items(), key=lambda kv: kv[1])[0]
        story = max(store.find_stories(limit=5000), key=lambda s: s.reports).id
        item = store.count_items() // 2
    return [
        Page("stories", "/"),
        Page("stories by rule (chart)", f"/?rule={rule}"),
        Page("stories by region (chart)", f"/?region={region}"),
        Page("story", f"/stories/{story}"),
        Page("search: common word", "/search?q=china"),
        Page("search: rare word", f"/search?q={RARE}"),
        Page("item", f"/items/{item}"),
        Page("rules", "/rules"),
        Page(
            "playground check, 7 days",
            f"/rules/playground/check?text=taiwan+AND+drill*&days=7&compare={rule}",
            PLAYGROUND_TARGET,
        ),
        Page("feeds", "/feeds"),
        Page("deliveries", "/deliveries"),
    ]


def timed(client: TestClient, path: str, runs: int) -> tuple[int, int, float, float]:
    """(status, bytes, median wall ms, median CPU ms) of `runs` requests after one to warm
    up (the size shows the page was not empty)."""
    first = client.get(path)
    walls, cpus = [], []
    for _ in range(runs):
        cpu, wall = time.process_time(), time.perf_counter()
        client.get(path)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return first.status_code, len(first.content), statistics.median(walls), statistics.median(cpus)


def verdict(status: int, cpu: float, target: float) -> str:
    """On CPU time: on a shared machine the wall time mostly measures the other processes
    (both are printed; on an idle machine they are close, the database being in the cache)."""
    if status != 200:
        return f"HTTP {status}"
    return "ok" if cpu < target else "SLOW"


def table(built: Built, runs: int) -> None:
    config = WebConfig(db=DbLocation(built.db), rules_dir=built.rules)
    with TestClient(
        create_app(config), base_url="http://127.0.0.1", raise_server_exceptions=False
    ) as client:
        print(
            f"{'PAGE':27} {'PATH':40} {'KB':>5} {'WALL ms':>8} {'CPU ms':>7} {'TARGET':>6}  VERDICT"
        )
        for page in pages(built.db):
            status, size, wall, cpu = timed(client, page.path, runs)
            shown = page.path if len(page.path) <= 40 else page.path[:37] + "..."
            print(
                f"{page.label:27} {shown:40} {size / 1024:5.0f} {wall:8.1f} {cpu:7.1f} "
                f"{page.target:6.0f}  "
                f"{verdict(status, cpu, page.target)}"
            )
    load = os.getloadavg()[0]
    print(f"medians of {runs} requests per page (after one to warm up), in-process TestClient;")
    print(f"verdicts on CPU time; load average {load:.1f} on {os.cpu_count()} CPUs while timing")


def _inline_endpoints() -> None:
    """Run sync endpoints in the calling thread (Starlette hands them to anyio's thread pool,
    where cProfile does not see them)."""
    import anyio.to_thread

    async def here(func: Callable[..., Any], *args: Any, **_options: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = here  # type: ignore[assignment]


def _inline(path: str, app: ASGIApp) -> None:
    """One GET of `path` from `app`, in this thread."""
    target = urlsplit(path)
    scope = {
        "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": target.path, "raw_path": target.path.encode(), "root_path": "",
        "query_string": target.query.encode(), "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"{path}: HTTP {message['status']}")

    asyncio.run(app(scope, receive, send))


def profile(built: Built, path: str) -> None:
    _inline_endpoints()
    app = create_app(WebConfig(db=DbLocation(built.db), rules_dir=built.rules))
    _inline(path, app)  # once to warm up (templates compiled, rules loaded)
    profiler = cProfile.Profile()
    profiler.runcall(_inline, path, app)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--items", type=int, default=100_000, help="items in the database")
    args.add_argument("--runs", type=int, default=5, help="timed requests per page")
    args.add_argument("--dir", type=Path, help="where the database is built (cached)")
    args.add_argument("--profile", metavar="PATH", help="profile one request of this page")
    opts = args.parse_args(argv)
    built = build(opts.dir or cache_dir(opts.items), opts.items)
    if opts.profile:
        profile(built, opts.profile)
    else:
        table(built, opts.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
