"""Surges on both backends (a real SQLite file, then a real PostgreSQL database): the counts
detection reads, firing once per cooldown, routes taking them (kinds, criteria, their own
thresholds), alerts frozen once per route, and the webhook body a version 1 digest body with
`surge`."""

from __future__ import annotations

import email
import email.policy
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from monitor.cli.surges import surge_lines, surge_status, surges_json
from monitor.digest.render.email import email_part
from monitor.digest.surges import detect, freeze_surges
from monitor.models import Rendered, Settings
from monitor.service.logs import JsonFormatter
from monitor.store.surges import Surges
from monitor.story.surge import Surge
from tests.digest.world import NOW, World, email_channels, make_world, send
from tests.support.receivers import SmtpCatcher

SETTINGS = Settings()
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "webhook-schema.json").read_text())


@pytest.fixture
def world(tmp_path: Path, db_target: Path | str) -> Iterator[World]:
    """Once on a SQLite file, once on a PostgreSQL database."""
    with make_world(tmp_path, db_target) as made:
        yield made


def matched_at(world: World, ids: Sequence[int], when: datetime) -> None:
    """Set when the items' matches were recorded (a poll records them at its own time)."""
    with world.store._write() as conn:
        conn.executemany(
            "UPDATE matches SET matched_at = ? WHERE item_id = ?",
            [(when.isoformat(timespec="microseconds"), i) for i in ids],
        )


def burst(
    world: World, n: int, rule: str = "strait", ago: timedelta = timedelta(minutes=10)
) -> list[int]:
    ids = [world.add(f"{rule}-{ago}-{k}", f"Taiwan Strait item {k}", [rule]) for k in range(n)]
    matched_at(world, ids, NOW - ago)
    watched_since(world, NOW - timedelta(days=8))
    return ids


def watched_since(world: World, when: datetime) -> None:
    """As if monitor had first polled every feed at `when` (storing an item resets it)."""
    for state in world.store.states().values():
        world.store.save_state(replace(state, first_polled=when))


def test_counts_of_the_last_hour_and_the_seven_days_before(world: World) -> None:
    recent = burst(world, 6)
    burst(world, 3, ago=timedelta(days=3))
    burst(world, 4, ago=timedelta(days=9))  # older than the baseline: not counted
    old_news = burst(world, 1, ago=timedelta(minutes=5))
    world.mark_history(old_news[0])
    both = world.add("both", "Taiwan Strait and the economy", ["strait", "economy"])
    matched_at(world, [both], NOW - timedelta(minutes=1))
    counts = {c.key: c for c in Surges(world.store).volume_counts(NOW, at_least=5)}
    assert set(counts) == {"rule:strait", "region:TW"}
    assert (counts["rule:strait"].last_hour, counts["rule:strait"].before) == (7, 3)
    assert counts["rule:strait"].items == tuple(sorted([*recent, both]))
    # A region counts an item once, whatever number of rules it matched.
    assert (counts["region:TW"].last_hour, counts["region:TW"].before) == (7, 3)
    assert Surges(world.store).volume_counts(NOW, at_least=8) == []


def test_a_surge_fires_once_per_cooldown(world: World) -> None:
    surges = Surges(world.store)
    surge = Surge("volume", "rule:strait", "6 matches", NOW, (1,), "p")
    six = timedelta(hours=6)
    assert len(surges.fire([surge], six)) == 1
    later = Surge("volume", "rule:strait", "7 matches", NOW + timedelta(hours=5), (1,), "p")
    assert surges.fire([later], six) == []
    # Other thresholds (a route's own) have their own cooldown.
    assert len(surges.fire([Surge("volume", "rule:strait", "x", NOW, (), "q")], six)) == 1
    again = Surge("volume", "rule:strait", "9 matches", NOW + six, (1,), "p")
    assert [s.surge.why for s in surges.fire([again], six)] == ["9 matches"]
    assert surges.counts() == {"volume": 3}


def test_a_surge_is_frozen_once_per_route_even_when_two_processes_race(world: World) -> None:
    """The second freeze of one surge for one route (another process got there first) is
    refused by the claim's key: nothing of it is stored, the first stays whole."""
    surges = Surges(world.store)
    (fired,) = surges.fire([Surge("volume", "rule:strait", "6", NOW, (1,), "p")], timedelta(1))

    def alert(digest_id: str) -> Rendered:
        return Rendered(
            digest_id, "email", b"Subject: surge\r\n\r\nbody", "surge", "message/rfc822"
        )

    assert surges.freeze(alert("d1"), "desk-now", "desk", fired.id, NOW)
    assert not surges.freeze(alert("d2"), "desk-now", "desk", fired.id, NOW)
    assert [r["id"] for r in world.store._rows("SELECT id FROM digests")] == ["d1"]
    body = world.store._rows("SELECT body FROM digests")[0]["body"]
    assert bytes(body) == b"Subject: surge\r\n\r\nbody"
    assert surges.pending("desk-now", NOW - timedelta(hours=1), [("volume", "p")]) == []
    assert [s.id for s in surges.pending("other", NOW, [("volume", "p")])] == [fired.id]


def test_detect_volume_surges_per_rule_and_region_with_why(world: World) -> None:
    burst(world, 6)
    channels = world.channels(email_channels(2525))
    fired = detect(world.store, channels, SETTINGS, NOW)
    assert {(s.surge.key, s.surge.why) for s in fired} == {
        ("rule:strait", "6 matches in the last hour, none in the 7 days before"),
        ("region:TW", "6 matches in the last hour, none in the 7 days before"),
    }
    assert detect(world.store, channels, SETTINGS, NOW + timedelta(minutes=30)) == []


def test_routes_take_the_kinds_and_criteria_they_ask_for_once(world: World) -> None:
    burst(world, 6)
    channels = world.channels(
        email_channels(2525, "  - {id: volume, receiver: desk, match: {surge: [volume]}}\n")
        + "  - {id: economy, receiver: desk, match: {surge: [volume], rules: [economy]}}\n"
        + "  - {id: stories, receiver: desk, match: {surge: [story]}}\n"
    )
    detect(world.store, channels, SETTINGS, NOW)
    frozen = freeze_surges(world.store, channels, world.rules, {}, NOW)
    assert sorted(f.split("-surge-")[0].split("-", 1)[1] for f in frozen) == ["volume", "volume"]
    assert freeze_surges(world.store, channels, world.rules, {}, NOW) == []
    # A surge-only route takes no digest of matches; the ordinary route still does.
    assert world.freeze(channels) is not None
    assert {r["route_id"] for r in world.store._rows("SELECT route_id FROM digests")} == {
        "volume",
        "desk-now",
    }


def test_day_one_has_no_week_behind_it(world: World) -> None:
    burst(world, 6)
    channels = world.channels(email_channels(2525))
    watched_since(world, NOW - timedelta(minutes=30))  # the first poll, grace 1 h before it
    assert detect(world.store, channels, SETTINGS, NOW) == []
    watched_since(world, NOW - timedelta(hours=4))
    fired = detect(world.store, channels, SETTINGS, NOW)
    assert {s.surge.why for s in fired} == {
        "6 matches in the last hour, none in the 4 hours before"
    }


def test_a_story_of_old_news_never_surges(world: World) -> None:
    old = NOW - timedelta(days=3)  # first seen NOW: history, as ingest judges it
    ids = [
        world.add(f"o{n}", "Taiwan Strait drills", [], feed=f, published=old)
        for n, f in enumerate(["wire", "post", "tv"])
    ]
    with world.store._write() as conn:
        conn.execute("UPDATE items SET first_seen = ?", (NOW.isoformat(timespec="microseconds"),))
    stories = world.store.item_stories(ids)
    for other in ids[1:]:
        world.store.merge_stories(stories[ids[0]], stories[other])
    channels = world.channels(email_channels(2525))
    assert [
        s for s in detect(world.store, channels, SETTINGS, NOW) if s.surge.kind == "story"
    ] == []


def test_a_muted_rules_surge_waits_for_the_mute_to_end(world: World) -> None:
    burst(world, 6)
    extra = "  - {id: volume, receiver: desk, match: {surge: [volume], rules: [strait]}}\n"
    channels = world.channels(email_channels(2525, extra))
    detect(world.store, channels, SETTINGS, NOW)
    muted = {**world.rules, "strait": replace(world.rules["strait"], mute_until=date(2025, 12, 3))}
    assert freeze_surges(world.store, channels, muted, {}, NOW) == []
    assert len(freeze_surges(world.store, channels, world.rules, {}, NOW)) == 1


def test_story_surge_from_stored_stories_with_a_routes_own_thresholds(world: World) -> None:
    ids = [
        world.add("s1", "Taiwan Strait drills", [], feed="wire"),
        world.add("s2", "Taiwan Strait drills begin", [], feed="post"),
    ]
    stories = world.store.item_stories(ids)
    world.store.merge_stories(stories[ids[0]], stories[ids[1]])  # one story of two outlets
    hook = """\
  - id: two
    receiver: ops
    match: {surge: [story]}
    surge: {story: {outlets: 2}}
"""
    text = email_channels(2525).replace(
        "routes:", "  - id: ops\n    webhook: {url: 'http://127.0.0.1:9/h'}\nroutes:"
    )
    channels = world.channels(text + hook)
    fired = detect(world.store, channels, SETTINGS, NOW)
    assert [(s.surge.kind, s.surge.why) for s in fired] == [
        ("story", "2 outlets in 1 language within 0 min")
    ]
    frozen = freeze_surges(world.store, channels, world.rules, {}, NOW)
    assert len(frozen) == 1
    body = json.loads(world.store._rows("SELECT body FROM digests")[0]["body"])
    jsonschema.validate(body, SCHEMA)
    assert body["surge"]["kind"] == "story" and body["surge"]["why"].startswith("2 outlets")
    assert [i["id"] for i in body["groups"][0]["items"]] == ids


def test_alert_emails_go_out_through_the_outbox_retried_once_each(world: World) -> None:
    burst(world, 5)
    with SmtpCatcher() as smtp:
        channels = world.channels(
            email_channels(
                smtp.port,
                "  - {id: volume, receiver: desk, match: {surge: [volume], regions: [TW]}}\n",
            )
        )
        detect(world.store, channels, SETTINGS, NOW)
        freeze_surges(world.store, channels, world.rules, {}, NOW)
        # The rule's surge too (its items are tagged TW); the server turns the first away once.
        smtp.fail_next("451 4.3.0 try again later")
        assert send(world, channels) == [False, True]
        assert send(world, channels) == []  # the retry waits its backoff
        assert send(world, channels, NOW + timedelta(minutes=10)) == [True]
        assert send(world, channels, NOW + timedelta(hours=1)) == []
        mails = [m.data for m in smtp.messages]
    subjects = sorted(
        email.message_from_bytes(m, policy=email.policy.default)["Subject"] for m in mails
    )
    assert subjects == [
        "Surge (volume): Taiwan Strait military pressure (strait): 5 matches in the last hour,"
        " none in the 7 days before",
        "Surge (volume): region TW: 5 matches in the last hour, none in the 7 days before",
    ]
    raw = mails[0]
    text = email_part(raw, "plain")
    assert text is not None and "Taiwan Strait item 0" in text


def test_each_surge_is_one_structured_log_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    burst(world, 5)
    with caplog.at_level(logging.INFO, logger="monitor.surge"):
        fired = detect(world.store, world.channels(email_channels(2525)), SETTINGS, NOW)
    records = [r for r in caplog.records if r.name == "monitor.surge"]
    assert len(records) == len(fired) == 2
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["surge_kind"] == "volume" and line["surge_key"] == fired[0].surge.key
    assert line["surge"] == fired[0].id and line["level"] == "WARNING"
    assert line["msg"].endswith("5 matches in the last hour, none in the 7 days before")


def test_status_counts_each_kind_and_tells_the_latest(world: World) -> None:
    burst(world, 6)
    detect(world.store, world.channels(email_channels(2525)), SETTINGS, NOW)
    status = surge_status(world.store)
    doc = surges_json(status)
    assert doc["counts"] == {"story": 0, "volume": 2}
    assert {r["key"] for r in doc["recent"]} == {"rule:strait", "region:TW"}
    lines = surge_lines(status, NOW + timedelta(minutes=5)).splitlines()
    assert lines[0] == "surges: 0 story, 2 volume"
    assert lines[1].endswith(
        "5m ago  volume region:TW: 6 matches in the last hour, none in the 7 days before"
    )
