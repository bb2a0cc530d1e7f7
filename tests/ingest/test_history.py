"""Old news is never alerted on: matches of items that were old when first seen are history.

Every test polls a real HTTP feed server into a real SQLite file with a real rule set; the
cycle's clock is set by hand so that "a day later" needs no waiting. `RULE` matches every
item these feeds serve (their titles all say "Taiwan Strait").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from monitor.ingest.feeds import load_feeds
from monitor.ingest.poll import poll_cycle
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import CycleSummary, Feed, FeedState, Settings
from monitor.store import Store
from monitor.store.details import item_detail, match_totals
from tests.support.feedserver import FeedServer, serve

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # when each test's feed is first polled
SETTINGS = Settings(connect_timeout=2, read_timeout=1, total_timeout=3)
RULE = "rules:\n  - id: strait\n    title: Strait\n    query: '\"Taiwan Strait\"'\n"


def feed_xml(*entries: tuple[str, datetime]) -> bytes:
    """RSS 2.0 with one item per (guid, published); every title mentions the Taiwan Strait."""
    items = "".join(
        f"<item><guid>{escape(guid)}</guid><title>Taiwan Strait report {escape(guid)}</title>"
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate></item>"
        for guid, when in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    (tmp_path / "rules" / "alerts").mkdir(parents=True)
    (tmp_path / "rules" / "alerts" / "strait.yaml").write_text(RULE, encoding="utf-8")
    return load_ruleset(tmp_path / "rules")


async def poll_at(
    when: datetime, feed: Feed, store: Store, ruleset: RuleSet, settings: Settings = SETTINGS
) -> CycleSummary:
    return await poll_cycle(
        [feed], store, settings, force=True, ruleset=ruleset, clock=lambda: when
    )


def history_of(store: Store) -> dict[str, bool]:
    """guid -> whether its match is history."""
    found = store.search(None, limit=1000)
    details = [item_detail(store, s.id) for s in found]
    return {d.stored.item.guid: d.matches[0].history for d in details if d and d.matches}


async def test_a_first_poll_alerts_only_on_what_is_fresh(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    body = feed_xml(
        ("months-old", T0 - timedelta(days=120)),
        ("two-hours", T0 - timedelta(hours=2)),  # before the 1 h grace
        ("half-hour", T0 - timedelta(minutes=30)),  # within it
        ("just-now", T0 - timedelta(minutes=1)),
    )
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(body)))
    summary = await poll_at(T0, feed, store, ruleset)
    assert (summary.new, summary.matches, summary.history) == (4, 4, 2)
    assert history_of(store) == {
        "months-old": True,
        "two-hours": True,
        "half-hour": False,
        "just-now": False,
    }
    state = store.get_state("wire")
    assert state is not None and state.first_polled == T0
    # Stored and searchable all the same.
    assert len(store.search('"Taiwan Strait"')) == 4
    assert match_totals(store) == (4, 2)


async def test_later_polls_judge_by_the_first_poll_and_the_maximum_age(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    route = server.add("/wire.xml", serve(feed_xml(("first", T0))))
    feed = Feed(id="wire", url=route)
    await poll_at(T0, feed, store, ruleset)
    later = T0 + timedelta(hours=6)
    server.add(
        "/wire.xml",
        serve(
            feed_xml(
                ("first", T0),
                ("late-but-new", T0 + timedelta(hours=1)),  # after the first poll: news
                ("backdated", T0 - timedelta(hours=3)),  # published before it: old news
            )
        ),
    )
    summary = await poll_at(later, feed, store, ruleset)
    assert (summary.new, summary.history) == (2, 1)
    much_later = T0 + timedelta(days=5)
    server.add("/wire.xml", serve(feed_xml(("after-outage", T0 + timedelta(days=2)))))
    assert (await poll_at(much_later, feed, store, ruleset)).history == 1  # 3 days old > 2 d
    state = store.get_state("wire")
    assert state is not None and state.first_polled == T0  # set once
    assert history_of(store) == {
        "first": False,
        "late-but-new": False,
        "backdated": True,
        "after-outage": True,
    }


async def test_the_settings_move_the_limits(
    server: FeedServer, store: Store, ruleset: RuleSet, tmp_path: Path
) -> None:
    feeds_yaml = tmp_path / "feeds.yaml"
    feeds_yaml.write_text(
        "settings:\n  first_poll_grace: 0s\n  alert_max_age: 3h\nfeeds: []\n", encoding="utf-8"
    )
    settings = load_feeds(feeds_yaml).settings
    assert (settings.first_poll_grace, settings.alert_max_age) == (
        timedelta(0),
        timedelta(hours=3),
    )
    body = feed_xml(("ten-minutes", T0 - timedelta(minutes=10)))
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(body)))
    assert (await poll_at(T0, feed, store, ruleset, settings)).history == 1  # no grace at all
    server.add("/wire.xml", serve(feed_xml(("new", T0 + timedelta(hours=1)))))
    assert (await poll_at(T0 + timedelta(hours=5), feed, store, ruleset, settings)).history == 1


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("first_poll_grace: 10", "'first_poll_grace' must be a duration with a unit"),
        ("alert_max_age: 0s", "'alert_max_age' must be at least 1m"),
        ("alert_max_age: soon", "'alert_max_age': bad duration"),
    ],
)
def test_bad_settings_name_the_file_and_line(tmp_path: Path, yaml: str, message: str) -> None:
    from monitor.errors import ConfigError

    path = tmp_path / "feeds.yaml"
    path.write_text(f"settings:\n  {yaml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_feeds(path)
    assert f"{path}:2:" in str(raised.value) and message in str(raised.value)


async def test_an_edit_never_turns_an_alert_into_history(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(feed_xml(("a", T0)))))
    await poll_at(T0, feed, store, ruleset)
    edited = feed_xml(("a", T0)).replace(b"report a", b"report a (updated)")
    server.add("/wire.xml", serve(edited))
    summary = await poll_at(T0 + timedelta(days=3), feed, store, ruleset)  # now past max age
    assert (summary.updated, summary.matches, summary.history) == (1, 1, 0)
    assert history_of(store) == {"a": False}  # still due to go out, if it has not yet


async def test_a_feed_polled_before_first_polls_were_kept_counts_from_its_last_poll(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    url = server.add("/wire.xml", serve(feed_xml(("new", T0 + timedelta(minutes=5)))))
    # As an older monitor left it: polled at T0, no first poll recorded.
    store.save_state(FeedState("wire", url, configured_url=url, last_attempt=T0))
    feed = Feed(id="wire", url=url)
    summary = await poll_at(T0 + timedelta(hours=3), feed, store, ruleset)
    assert summary.history == 0
    state = store.get_state("wire")
    assert state is not None and state.first_polled == T0


async def test_a_failed_first_poll_still_anchors_the_grace(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    from tests.support.feedserver import status

    feed = Feed(id="wire", url=server.add("/wire.xml", status(503)))
    await poll_at(T0, feed, store, ruleset)
    # Back three hours later with what was published meanwhile: news since monitor watched.
    server.add("/wire.xml", serve(feed_xml(("meanwhile", T0 + timedelta(hours=1)))))
    summary = await poll_cycle(
        [feed],
        store,
        SETTINGS,
        force=True,
        ignore_backoff=True,
        ruleset=ruleset,
        clock=lambda: T0 + timedelta(hours=3),
    )
    assert (summary.new, summary.history) == (1, 0)


async def test_a_future_date_is_clamped_to_first_seen(
    server: FeedServer, store: Store, ruleset: RuleSet
) -> None:
    body = feed_xml(("tomorrow", T0 + timedelta(hours=20)), ("earlier", T0 - timedelta(minutes=5)))
    feed = Feed(id="wire", url=server.add("/wire.xml", serve(body)))
    summary = await poll_at(T0, feed, store, ruleset)
    assert summary.history == 0
    [first, second] = store.search(None)
    assert (first.item.guid, first.item.published) == ("tomorrow", T0)  # = first seen
    assert second.item.guid == "earlier"
