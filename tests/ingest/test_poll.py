"""One poll of one feed, and cycles, through every real stage: HTTP server, parser, SQLite file."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from monitor.ingest.poll import Parser, is_due, poll_cycle
from monitor.match.rule import Match
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import Feed, FeedState, FetchStatus, Item, Settings
from monitor.store import Store
from tests.support.feedserver import FeedServer, redirect, serve, status, with_etag

SETTINGS = Settings(connect_timeout=2, read_timeout=1, total_timeout=3)


# Items published a little before the tests run: fresh news, which alerts (old news is
# history, see test_history.py).
FRESH = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


def rss(*entries: tuple[str, str], published: datetime = FRESH) -> bytes:
    """An RSS 2.0 document with one item per (guid, title)."""
    when = format_datetime(published.astimezone(UTC), usegmt=True)
    items = "".join(
        f"<item><guid>{escape(g)}</guid><title>{escape(t)}</title>"
        f"<link>https://news.example.org/{escape(g)}?utm_source=rss</link>"
        f"<description>&lt;p&gt;{escape(t)} &amp;amp; more&lt;/p&gt;</description>"
        f"<pubDate>{when}</pubDate></item>"
        for g, t in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Test</title><link>https://news.example.org/</link>{items}</channel></rss>"
    ).encode()


TWO = rss(("a1", "PLA drills near the Taiwan Strait"), ("a2", "北朝鮮がミサイル発射"))


async def cycle(store: Store, *feeds: Feed, force: bool = True) -> dict[str, FetchStatus]:
    summary = await poll_cycle(list(feeds), store, SETTINGS, force=force)
    return {o.feed_id: o.status for o in summary.outcomes}


async def test_cold_then_warm_poll_stores_once_and_uses_the_etag(
    server: FeedServer, store: Store
) -> None:
    feed = Feed(id="wire", url=server.add("/wire.xml", with_etag(TWO)))
    assert await cycle(store, feed) == {"wire": FetchStatus.OK}
    assert store.count_items() == 2
    assert await cycle(store, feed) == {"wire": FetchStatus.NOT_MODIFIED}
    assert store.count_items() == 2
    assert server.requests_to("/wire.xml")[1].headers["if-none-match"] == '"v1"'
    state = store.get_state("wire")
    assert state is not None and state.etag == '"v1"' and state.consecutive_errors == 0


async def test_items_are_normalised_before_they_are_stored(
    server: FeedServer, store: Store
) -> None:
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(TWO)))
    await cycle(store, feed)
    [found] = store.search("ミサイル")
    assert found.item.title == "北朝鮮がミサイル発射"
    assert found.item.summary == "北朝鮮がミサイル発射 & more"
    assert found.item.link == "https://news.example.org/a2"  # tracking parameter removed
    assert found.item.published == FRESH


async def test_an_edited_item_is_updated_not_duplicated(server: FeedServer, store: Store) -> None:
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(TWO)))
    await cycle(store, feed)
    server.add("/wire.xml", serve(rss(("a1", "PLA live-fire drills near the Taiwan Strait"))))
    summary = await poll_cycle([feed], store, SETTINGS, force=True)
    assert (summary.new, summary.updated) == (0, 1)
    assert store.count_items() == 2
    assert [s.item.title for s in store.search("live-fire")] == [
        "PLA live-fire drills near the Taiwan Strait"
    ]


async def test_one_bad_feed_does_not_stop_the_cycle(server: FeedServer, store: Store) -> None:
    good = Feed(id="good", url=server.add("/good.xml", serve(TWO)))
    broken = Feed(id="broken", url=server.add("/broken.xml", status(500)))
    html = Feed(
        id="page",
        url=server.add("/page", serve(b"<html><body>hello</body></html>", "text/html")),
    )
    statuses = await cycle(store, good, broken, html)
    assert statuses == {
        "good": FetchStatus.OK,
        "broken": FetchStatus.ERROR,
        "page": FetchStatus.ERROR,
    }
    assert store.count_items("good") == 2
    state = store.get_state("broken")
    assert state is not None and state.consecutive_errors == 1
    assert "500" in (state.last_error or "")
    page_state = store.get_state("page")
    assert page_state is not None and "HTML" in (page_state.last_error or "")


async def test_a_failing_feed_backs_off(server: FeedServer, store: Store) -> None:
    feed = Feed(id="broken", url=server.add("/broken.xml", status(500)))
    await cycle(store, feed)
    state = store.get_state("broken")
    assert state is not None and state.next_due is not None
    now = datetime.now(UTC)
    assert state.next_due > now + timedelta(minutes=5)
    assert not is_due(feed, state, now)
    assert not is_due(feed, state, now, force=True)  # `monitor poll` respects a back-off


async def test_a_cycle_reads_the_whole_state_of_the_feeds_it_polls_alone(
    server: FeedServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service's tick mostly finds a few feeds due of thousands: which ones is decided from
    their schedules, and only the polled feeds' states (validators, known items) are read."""
    feeds = [Feed(id=f"f{n}", url=server.add(f"/f{n}.xml", with_etag(TWO))) for n in range(3)]
    await cycle(store, *feeds)
    later = datetime.now(UTC) + timedelta(hours=1)
    for feed in feeds:  # f0 due now, the others not for an hour
        saved = store.get_state(feed.id)
        assert saved is not None
        store.save_state(replace(saved, next_due=None if feed.id == "f0" else later))
    read: list[list[str] | None] = []
    states = store.states

    def recorded(feed_ids: Collection[str] | None = None) -> dict[str, FeedState]:
        read.append(None if feed_ids is None else sorted(feed_ids))
        return states(feed_ids)

    monkeypatch.setattr(store, "states", recorded)
    assert await cycle(store, *feeds, force=False) == {"f0": FetchStatus.NOT_MODIFIED}
    assert read == [["f0"]]


async def test_retry_after_is_honoured(server: FeedServer, store: Store) -> None:
    feed = Feed(id="busy", url=server.add("/busy.xml", status(429, {"Retry-After": "7200"})))
    await cycle(store, feed)
    state = store.get_state("busy")
    assert state is not None and state.next_due is not None
    assert state.next_due >= datetime.now(UTC) + timedelta(seconds=7100)


async def test_gone_disables_the_feed(server: FeedServer, store: Store) -> None:
    feed = Feed(id="old", url=server.add("/old.xml", status(410)))
    assert await cycle(store, feed) == {"old": FetchStatus.GONE}
    assert await cycle(store, feed) == {}  # never polled again
    assert len(server.requests_to("/old.xml")) == 1


async def test_a_permanent_redirect_moves_the_feed(server: FeedServer, store: Store) -> None:
    server.add("/new.xml", with_etag(TWO))
    feed = Feed(id="moved", url=server.add("/old.xml", redirect(server.url("/new.xml"), 301)))
    await cycle(store, feed)
    state = store.get_state("moved")
    assert state is not None and state.url == server.url("/new.xml")
    await cycle(store, feed)
    assert len(server.requests_to("/old.xml")) == 1  # the second poll went straight there
    assert len(server.requests_to("/new.xml")) == 2


async def test_editing_the_url_by_hand_starts_the_feed_over(
    server: FeedServer, store: Store
) -> None:
    old = Feed(id="wire", url=server.add("/a.xml", status(500)))
    await cycle(store, old)
    edited = Feed(id="wire", url=server.add("/b.xml", serve(TWO)))
    assert await cycle(store, edited, force=False) == {"wire": FetchStatus.OK}
    state = store.get_state("wire")
    assert state is not None and state.consecutive_errors == 0


async def test_disabled_feeds_are_not_polled(server: FeedServer, store: Store) -> None:
    feed = Feed(id="off", url=server.add("/off.xml", serve(TWO)), enabled=False)
    assert await cycle(store, feed) == {}
    assert server.requests_to("/off.xml") == []


async def test_many_feeds_are_parsed_in_worker_processes(server: FeedServer, store: Store) -> None:
    feeds = [
        Feed(id=f"f{n}", url=server.add(f"/f{n}.xml", serve(rss((f"g{n}", f"Story {n}")))))
        for n in range(12)  # above the inline threshold: a process pool does the parsing
    ]
    statuses = await cycle(store, *feeds)
    assert set(statuses.values()) == {FetchStatus.OK}
    assert store.count_items() == 12


RULES = """\
rules:
  - id: strait
    title: Taiwan Strait military pressure
    severity: high
    query: '"Taiwan Strait" AND (drill* OR blockade)'
  - id: dprk-missiles
    title: North Korean missiles
    query: 'region:KP AND (missile OR ミサイル OR 미사일)'
"""


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    alerts = tmp_path / "rules" / "alerts"
    alerts.mkdir(parents=True)
    (alerts / "asia.yaml").write_text(RULES, encoding="utf-8")
    return load_ruleset(tmp_path / "rules")


async def test_items_are_tagged_and_matched_as_they_are_stored(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(TWO)))
    summary = await poll_cycle([feed], store, SETTINGS, ruleset=ruleset)
    assert summary.matches == 2
    [strait] = store.search(None, rule_id="strait")
    assert strait.item.title == "PLA drills near the Taiwan Strait"
    assert "TW" in strait.item.regions
    [dprk] = store.search(None, region="KP")
    assert store.matched_rules([dprk.id]) == {dprk.id: ["dprk-missiles"]}
    assert store.match_counts() == {"strait": 1, "dprk-missiles": 1}


async def test_unchanged_items_are_not_matched_again_but_edited_ones_are(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(TWO)))
    await poll_cycle([feed], store, SETTINGS, ruleset=ruleset)
    again = await poll_cycle([feed], store, SETTINGS, ruleset=ruleset, force=True)
    assert (again.new, again.updated, again.matches) == (0, 0, 0)
    edited = rss(
        ("a1", "PLA blockade drills near the Taiwan Strait"), ("a2", "北朝鮮がミサイル発射")
    )
    server.add("/wire.xml", serve(edited))
    third = await poll_cycle([feed], store, SETTINGS, ruleset=ruleset, force=True)
    assert (third.updated, third.matches) == (1, 1)
    assert store.match_counts() == {"strait": 1, "dprk-missiles": 1}  # one row per item/rule


class ExplodingRules(RuleSet):
    """A rule set with a bug: enriching one feed's items raises."""

    def enrich_folded(
        self, item: Item, feed: Feed | None
    ) -> tuple[Item, list[Match], tuple[str, str]]:  # what `enrich` and ingest call
        if item.feed_id == "bad":
            raise RuntimeError("boom")
        return super().enrich_folded(item, feed)


async def test_an_unexpected_error_in_one_feed_does_not_stop_the_cycle(
    server: FeedServer, store: Store, ruleset: RuleSet, caplog: pytest.LogCaptureFixture
) -> None:
    exploding = ExplodingRules(ruleset.rules, ruleset.gazetteer, ruleset.matcher)
    bad = Feed(id="bad", url=server.add("/bad.xml", serve(TWO)))
    good = Feed(id="good", url=server.add("/good.xml", serve(TWO)))
    summary = await poll_cycle([bad, good], store, SETTINGS, ruleset=exploding)
    outcomes = {o.feed_id: o for o in summary.outcomes}
    assert outcomes["good"].status is FetchStatus.OK and outcomes["good"].new == 2
    assert outcomes["bad"].status is FetchStatus.ERROR
    assert "RuntimeError('boom')" in (outcomes["bad"].error or "")
    assert store.count_items("bad") == 0  # the failed transaction left nothing behind
    assert "feed bad: unexpected error" in caplog.text


async def test_worker_processes_tag_and_match_with_the_current_rules(
    server: FeedServer, store: Store, ruleset: RuleSet, tmp_path: Path
) -> None:
    feeds = [
        Feed(id=f"f{n}", url=server.add(f"/f{n}.xml", serve(rss((f"g{n}", f"北朝鮮ミサイル {n}")))))
        for n in range(10)
    ]
    parser = Parser(2)
    try:
        first = await poll_cycle(feeds[:5], store, SETTINGS, parser=parser, ruleset=ruleset)
        assert first.matches == 5
        alerts = tmp_path / "rules" / "alerts"
        (alerts / "asia.yaml").write_text(
            RULES.replace("dprk-missiles", "dprk-renamed"), encoding="utf-8"
        )
        reloaded = load_ruleset(tmp_path / "rules")
        second = await poll_cycle(feeds[5:], store, SETTINGS, parser=parser, ruleset=reloaded)
        assert second.matches == 5
    finally:
        parser.close()
    assert store.match_counts() == {"dprk-missiles": 5, "dprk-renamed": 5}
    assert set(store.region_counts()) >= {"KP"}
