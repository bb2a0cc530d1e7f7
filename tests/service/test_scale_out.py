"""Three `monitor run` instances on one PostgreSQL database, one of them SIGKILLed mid-cycle:
every feed is still polled each interval, no item is stored twice, no digest is sent twice
for an item and route (beyond the documented single resend of a digest whose sender died
between sending and recording it), and none is lost.

Real parts only: three service processes (each with its own copy of `rules/`, its own
`MONITOR_INSTANCE` and a `user_agent` naming it, so the feed server can tell who asked), a
throwaway PostgreSQL cluster, feeds on loopback that publish one new item each interval, and
an SMTP server. The shortest interval feeds.yaml accepts is a minute, so an interval here
passes when the test makes every feed due (its stored `next_due` set to now, as the clock
would): the feeds' own interval (10 minutes) never comes round during the test. A killed
instance's feeds are taken by the others once it is seen dead (three of its ticks without a
beat) or its lease runs out (5 s, the shortest), whichever comes first: well inside one
interval. Every wait ends on a condition checked
against a deadline, or on the feed server's event; none sleeps for a fixed time.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import random
import re
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import psycopg
import pytest

from monitor.store import Store
from tests.support.feedserver import RSS_TYPE, Exchange, FeedServer
from tests.support.receivers import ReceivedMail, SmtpCatcher
from tests.support.service import WAIT, RunningService

FEEDS = 6  # below the 8 from which a service starts parse workers: three services stay light
INTERVALS = 5
KILL_IN = 3  # the interval in which the instance holding feeds is SIGKILLed
NAMES = ("alpha", "bravo", "charlie")
AGENT = "monitor-scale/"
TICK = 0.5  # an instance not seen for three ticks is dead: 1.5 s, kept clear of a busy CPU
LINK = re.compile(r"https://scale\.example\.org/feed\d+/item\d+")
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]

pytestmark = pytest.mark.slow


def word(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=4))


def words(feed: int, number: int, count: int) -> list[str]:
    """Made-up words, the same for an item every time: items share nothing a story linker
    could join them on (a story already sent takes its new reports without a message)."""
    rng = random.Random(feed * 1000 + number)
    return [word(rng) for _ in range(count)]


class Farm:
    """Feeds that add one item per interval; while `holding`, requests wait for `release`."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.published = [datetime.now(UTC)]  # when each interval's items came out
        self.holding = False
        self.first_held = threading.Event()
        self.release = threading.Event()
        self.held_by: str | None = None
        self._lock = threading.Lock()
        for feed in range(FEEDS):
            server.add(f"/feed{feed}.xml", self._route(feed))

    def url(self, feed: int) -> str:
        return self.server.url(f"/feed{feed}.xml")

    def publish(self) -> None:
        self.published.append(datetime.now(UTC))

    def links(self) -> set[str]:
        return {link(f, n) for f in range(FEEDS) for n in range(1, len(self.published) + 1)}

    def _route(self, feed: int) -> Callable[[Exchange], None]:
        def answer(exchange: Exchange) -> None:
            if self.holding:
                with self._lock:
                    if self.held_by is None:
                        self.held_by = exchange.headers["user-agent"].removeprefix(AGENT)
                        self.first_held.set()
                self.release.wait(WAIT)
            exchange.send(200, self.document(feed), {"Content-Type": RSS_TYPE})

        return answer

    def document(self, feed: int) -> bytes:
        items = []
        for number, when in enumerate(self.published, start=1):
            title, summary = " ".join(words(feed, number, 4)), " ".join(words(feed, number, 16))
            items.append(
                f"<item><title>{title}</title><link>{link(feed, number)}</link>"
                f"<guid>scale-{feed}-{number}</guid><pubDate>{format_datetime(when)}</pubDate>"
                f"<description>{summary}</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Outlet {feed}</title><link>https://scale.example.org/feed{feed}</link>"
            f"<description>scale-out test</description>{''.join(reversed(items))}"
            "</channel></rss>"
        ).encode()


def link(feed: int, number: int) -> str:
    return f"https://scale.example.org/feed{feed}/item{number}"


def write_rules(folder: Path, name: str, farm: Farm, smtp_port: int) -> Path:
    (folder / "alerts").mkdir(parents=True)
    # A rule per item, on a word of its title: items matched by one rule would share that
    # rule as evidence of one story.
    rules = "".join(
        f"  - id: item-{f}-{n}\n    title: Item\n    severity: high\n"
        f"    query: {words(f, n, 1)[0]}\n"
        for f in range(FEEDS)
        for n in range(1, INTERVALS + 1)
    )
    (folder / "alerts" / "scale.yaml").write_text(f"rules:\n{rules}", encoding="utf-8")
    feeds = "".join(
        f"  - id: scale-{f}\n    url: {farm.url(f)}\n    interval: 10m\n" for f in range(FEEDS)
    )
    (folder / "feeds.yaml").write_text(
        f"settings:\n  lease: 5s\n  user_agent: {AGENT}{name}\nfeeds:\n{feeds}", encoding="utf-8"
    )
    (folder / "channels.yaml").write_text(
        "receivers:\n  - id: desk\n    email: {to: [desk@example.org], from: m@example.org,"
        f" smtp: {{host: 127.0.0.1, port: {smtp_port}}}}}\n"
        "routes:\n  - {id: desk-now, receiver: desk, schedule: immediate}\n",
        encoding="utf-8",
    )
    return folder


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def stored(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT feed_id, guid FROM items")]


def leases_of(url: str, holder: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM feed_leases WHERE holder = %s", [holder])
        return int(row.fetchone()[0])


def unlinked(url: str) -> tuple[int, int]:
    """Items without a story link, and items still queued for one."""
    with psycopg.connect(url) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM items i LEFT JOIN story_links l ON l.item_id = i.id"
            " WHERE l.item_id IS NULL"
        ).fetchone()
        queued = conn.execute("SELECT count(*) FROM story_pending").fetchone()
    assert orphans is not None and queued is not None
    return int(orphans[0]), int(queued[0])


def make_due(url: str) -> None:
    """An interval passes: every feed is due now (its poll of the last one is stored)."""
    now = datetime.now(UTC)
    with Store(url) as store:
        for state in store.states().values():
            store.save_state(dataclasses.replace(state, next_due=now))


def mailed(messages: list[ReceivedMail]) -> dict[str, list[str]]:
    """Item link -> the Message-IDs (one per digest) of every mail that carried it."""
    carried: dict[str, list[str]] = defaultdict(list)
    for mail in messages:
        message = email.message_from_bytes(mail.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        for found in set(LINK.findall(text.get_content())):
            carried[found].append(str(message["Message-ID"]))
    return carried


@pytest.fixture
def farm() -> Iterator[Farm]:
    with FeedServer() as server:
        farm = Farm(server)
        yield farm
        farm.release.set()  # a held request never outlives the test


def test_three_instances_share_the_feeds_and_survive_a_kill(
    pg_url: str, farm: Farm, tmp_path: Path
) -> None:
    with SmtpCatcher() as smtp:
        rules = {n: write_rules(tmp_path / n / "rules", n, farm, smtp.port) for n in NAMES}
        services = {n: RunningService(rules[n], pg_url, tick=TICK, env={"MONITOR_INSTANCE": n})
                    for n in NAMES}  # fmt: skip
        marks: list[int] = []  # where each interval starts in the server's request log
        victim = ""
        try:
            for interval in range(1, INTERVALS + 1):
                if interval > 1:
                    farm.holding = interval == KILL_IN
                    farm.publish()
                    marks.append(len(farm.server.requests))
                    make_due(pg_url)
                else:
                    marks.append(0)
                if interval == KILL_IN:
                    assert farm.first_held.wait(WAIT), "no instance polled in the kill interval"
                    victim = farm.held_by or ""
                    assert leases_of(pg_url, victim) > 0, "the victim holds feeds as it dies"
                    services[victim].proc.kill()
                    assert services[victim].stop() == -signal.SIGKILL  # reaped, pipe closed
                    farm.holding = False
                    farm.release.set()
                expected = FEEDS * interval
                eventually(
                    lambda n=expected: len(stored(pg_url)) >= n,
                    f"interval {interval} stored",
                )
                eventually(
                    lambda: farm.links() <= set(mailed(smtp.messages)),
                    f"the digests of interval {interval} arrived",
                )
        finally:
            farm.release.set()
            codes = {n: s.stop() for n, s in services.items() if n != victim}
            for name, service in services.items():  # shown by pytest when the test fails
                print(f"--- {name}", *service.seen[-60:], sep="\n")
        print("requests:", [(r.path, r.headers["user-agent"]) for r in farm.server.requests])
        assert set(codes.values()) == {0}, codes
        # Instances sharing a database step on nothing of each other's: no error logged.
        errors = [line for s in services.values() for line in s.seen if " ERROR " in line]
        assert not errors, errors
        marks.append(len(farm.server.requests))
        requests = farm.server.requests
        messages = list(smtp.messages)

    # Every feed polled in every interval, by exactly one living instance; the victim's
    # unanswered requests of the kill interval are the only extra ones.
    for interval in range(1, INTERVALS + 1):
        window = requests[marks[interval - 1] : marks[interval]]
        by_feed = Counter(
            (r.path, r.headers["user-agent"].removeprefix(AGENT) == victim) for r in window
        )
        for feed in range(FEEDS):
            path = f"/feed{feed}.xml"
            if interval < KILL_IN:
                assert by_feed[path, False] + by_feed[path, True] == 1, (interval, path, window)
            else:
                assert by_feed[path, False] == 1, (interval, path, window)
                assert interval == KILL_IN or by_feed[path, True] == 0, (interval, path)
    assert victim in NAMES

    # No item stored twice, and every item the farm served stored once.
    rows = stored(pg_url)
    assert len(rows) == len(set(rows)) == FEEDS * INTERVALS
    assert {g for _, g in rows} == {
        f"scale-{f}-{n}" for f in range(FEEDS) for n in range(1, INTERVALS + 1)
    }

    # Every item linked to one story, though any instance's cycle links whatever waits.
    assert unlinked(pg_url) == (0, 0)

    # Every item reached the route in exactly one digest; a digest arrived at most twice (the
    # single resend after a kill between send and record), and at most one did.
    carried = mailed(messages)
    assert set(carried) == farm.links()
    digests_per_item = {item: set(ids) for item, ids in carried.items()}
    assert all(len(ids) == 1 for ids in digests_per_item.values()), digests_per_item
    received = Counter(
        str(email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"])
        for m in messages
    )
    assert max(received.values()) <= 2 and sum(c == 2 for c in received.values()) <= 1, received
