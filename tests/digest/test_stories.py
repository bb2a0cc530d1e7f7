"""Story-first digests (monitor/digest/storyfirst.py, store/storysent.py) on a real SQLite
store, a real SMTP server and a real webhook receiver; stories are linked through the store's
own API (`save_links`), as the poll links them.
Expected: one entry per stored story, "reported by N outlets in ..." with each outlet's title
and link; the headline by the route's `languages:`; under `group_by: rule` the story's most
severe rule; a story sent to a route is never sent again as new: its later reports are
covered, or with `updates: true` and growth come as a marked update naming what is new;
unlinked items wait for their story, not forever; frozen bytes never change afterwards."""

from __future__ import annotations

import email
import json
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import jsonschema

from monitor.digest.arrange import arrange
from monitor.digest.channels import Channels
from monitor.digest.collect import collect
from monitor.digest.render.common import REPORTS_MAX
from monitor.digest.render.email import email_part, render_email
from monitor.digest.storyfirst import LINK_WAIT, headline
from monitor.models import Feed, Item, StoredItem
from monitor.store.outbox import Outbox
from monitor.store.stories import NewLink
from tests.digest.test_arrange import QUAKE, make_digest, make_entry, story_of
from tests.digest.world import NOW, SECRET, World, email_channels, hook_channels, send
from tests.support.receivers import SmtpCatcher, WebhookCatcher

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "webhook-schema.json").read_text())
FEEDS = {
    "wire": Feed("wire", "http://x/w", title="Asia Wire"),
    "toto": Feed("toto", "http://x/t", title="Toto Shimpo"),
    "ledger": Feed("ledger", "http://x/l", title="Pacific Ledger"),
    "hanbando": Feed("hanbando", "http://x/h", title="Hanbando Ilbo"),
}
HOUR = timedelta(hours=1)


def three_outlets(world: World) -> list[int]:
    """One event told by three outlets in two languages, linked into one story."""
    first = world.add("w1", "PLA drills in the Taiwan Strait", ["strait"], feed="wire")
    toto = world.add(
        "t1", "台湾海峡で中国軍が演習", ["strait"], feed="toto", lang="ja",
        published=NOW + timedelta(minutes=5), join=first,
    )  # fmt: skip
    ledger = world.add(
        "l1", "Drills near Taiwan Strait rattle markets", ["strait", "economy"], feed="ledger",
        published=NOW + timedelta(minutes=9), join=first,
    )  # fmt: skip
    return [first, toto, ledger]


def freeze(world: World, channels: Channels, minutes: float = 10) -> str | None:
    return world.freeze(channels, NOW + timedelta(minutes=minutes), FEEDS)


def plain(raw: bytes) -> tuple[str, str, str]:
    """(subject, plain text, html) of a received email."""
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    text, html = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    return " ".join(str(message["Subject"]).split()), text.get_content(), html.get_content()


def shown(world: World, route: str) -> dict[int, int]:
    """Item id -> deliveries.shown for a route (1 listed, 2 referred to, 3 covered)."""
    rows = world.store._rows("SELECT item_id, shown FROM deliveries WHERE route_id = ?", (route,))
    return {r["item_id"]: r["shown"] for r in rows}


def test_three_outlets_in_two_languages_are_one_entry_with_each_outlet(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        Outbox(world.store).route_start("desk-now", NOW - HOUR)
        ids = three_outlets(world)
        assert freeze(world, channels) is not None
        assert send(world, channels, NOW + timedelta(minutes=10)) == [True]
    [mail] = smtp.messages
    subject, text, html = plain(mail.data)
    assert subject == "[monitor] 1 alert: PLA drills in the Taiwan Strait (critical)"
    assert text.count("[CRITICAL] ") == 1
    assert "Reported by 3 outlets in en, ja:" in text
    assert "    - Toto Shimpo (ja): 台湾海峡で中国軍が演習 <https://news.example.org/t1>" in text
    assert "    - Pacific Ledger (en): Drills near Taiwan Strait rattle markets <" in text
    assert "Reported by 3 outlets in en, ja:" in html
    assert 'href="https://news.example.org/l1"' in html and "Toto Shimpo (ja)" in html
    assert shown(world, "desk-now") == dict.fromkeys(ids, 1)  # all three delivered with it


def test_the_headline_follows_the_route_languages(world: World) -> None:
    three_outlets(world)
    route = "    languages: [ja, en]\n"
    for extra, title in (("", "PLA drills"), (route, "台湾海峡で中国軍が演習")):
        channels = world.channels(email_channels(25, extra))
        Outbox(world.store).route_start("desk-now", NOW - HOUR)
        digest = collect(world.store, channels.routes[0], channels.receivers["desk"],
                         world.rules, FEEDS, NOW + timedelta(minutes=10))  # fmt: skip
        assert digest is not None
        [entry] = digest.digest.entries
        assert entry.item.title.startswith(title)
        assert entry.story is not None and entry.story.languages == ("en", "ja")


def test_a_korean_preference_without_a_korean_report_takes_the_earliest(world: World) -> None:
    three_outlets(world)
    channels = world.channels(email_channels(25, "    languages: [ko]\n"))
    digest = collect(world.store, channels.routes[0], channels.receivers["desk"],
                     world.rules, FEEDS, NOW + timedelta(minutes=10))  # fmt: skip
    assert digest is not None and digest.digest.entries[0].item.feed_id == "wire"


def test_under_group_by_rule_a_story_stands_under_its_most_severe_rule(world: World) -> None:
    low = world.add("e1", "Markets slide: economy fears", ["economy"], feed="ledger")
    world.add(
        "e2", "Taiwan Strait tension", ["strait"], feed="wire", join=low, published=NOW + HOUR
    )
    channels = world.channels(email_channels(25))
    digest = collect(world.store, channels.routes[0], channels.receivers["desk"],
                     world.rules, FEEDS, NOW + 2 * HOUR)  # fmt: skip
    assert digest is not None
    [group] = arrange(digest.digest)
    assert group.key == "rule:strait" and len(group.entries) == 1
    assert group.entries[0].item.title == "Markets slide: economy fears"  # the earliest report


def test_a_story_sent_is_not_sent_again_and_its_new_reports_are_covered(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        Outbox(world.store).route_start("ops-now", NOW - HOUR)
        first, *_ = three_outlets(world)
        sent = freeze(world, channels)
        assert sent is not None
        later = world.add(
            "h1", "대만해협 훈련", ["strait"], feed="hanbando", lang="ko",
            published=NOW + HOUR, join=first,
        )  # fmt: skip
        assert freeze(world, channels, 70) is None  # no updates: nothing more is sent
        assert send(world, channels, NOW + 2 * HOUR) == [True]
    assert len(hook.requests) == 1
    assert shown(world, "ops-now")[later] == 3  # covered: never pending again
    assert world.freeze(channels, NOW + 3 * HOUR, FEEDS) is None


def test_with_updates_a_grown_story_comes_back_as_a_marked_update(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port, "    updates: true\n"))
        Outbox(world.store).route_start("desk-now", NOW - HOUR)
        first, *_ = three_outlets(world)
        assert freeze(world, channels) is not None
        same = world.add("w2", "PLA drills continue", ["strait"], feed="wire",
                         published=NOW + HOUR, join=first)  # fmt: skip
        assert freeze(world, channels, 70) is None  # same outlet, same language: no growth
        korean = world.add(
            "h1", "대만해협 훈련", ["strait"], feed="hanbando", lang="ko",
            published=NOW + 2 * HOUR, join=first,
        )  # fmt: skip
        assert freeze(world, channels, 130) is not None
        assert send(world, channels, NOW + 3 * HOUR) == [True, True]
    subject, text, html = plain(smtp.messages[1].data)
    assert subject == (
        "[monitor] 1 update: PLA drills in the Taiwan Strait (update: +1 outlet, +ko)"
    )
    assert "Update: <strong>" in html and "new since last sent: 1 outlet (Hanbando Ilbo)" in html
    assert "[CRITICAL] Update: PLA drills in the Taiwan Strait" in text
    assert "Digest for route desk-now (desk): 1 update, published " in text
    assert (
        "Update: now reported by 4 outlets in en, ja, ko; new since last sent: "
        "1 outlet (Hanbando Ilbo), language ko:" in text
    )
    assert "    - Hanbando Ilbo (ko): 대만해협 훈련 <https://news.example.org/h1>" in text
    assert "Toto Shimpo (ja)" not in text  # an update lists only what is new
    assert shown(world, "desk-now")[same] == 3 and shown(world, "desk-now")[korean] == 1


def test_a_higher_severity_is_growth(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port, "    updates: true\n"))
        Outbox(world.store).route_start("desk-now", NOW - HOUR)
        low = world.add("e1", "Markets slide on economy fears", ["economy"], feed="ledger")
        assert freeze(world, channels) is not None
        world.add("e2", "Taiwan Strait: the economy and drills", ["strait"], feed="ledger",
                  published=NOW + HOUR, join=low)  # fmt: skip
        assert freeze(world, channels, 70) is not None
        assert send(world, channels, NOW + 2 * HOUR) == [True, True]
    _subject, text, _html = plain(smtp.messages[1].data)
    assert "severity critical (was low)" in text


def test_the_webhook_body_carries_each_entry_story(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url, "    updates: true\n"))
        Outbox(world.store).route_start("ops-now", NOW - HOUR)
        first, toto, ledger = three_outlets(world)
        assert freeze(world, channels) is not None
        world.add("h1", "대만해협 훈련", ["strait"], feed="hanbando", lang="ko",
                  published=NOW + HOUR, join=first)  # fmt: skip
        assert freeze(world, channels, 70) is not None
        assert send(world, channels, NOW + 2 * HOUR) == [True, True]
    new, update = (json.loads(r.body) for r in hook.requests)
    for body in (new, update):
        jsonschema.validate(body, SCHEMA)
        assert body["version"] == "1"
    [item] = new["groups"][0]["items"]
    story = item["story"]
    assert story["id"] == world.story(first)
    assert story["outlets"] == ["wire", "toto", "ledger"]
    assert story["languages"] == ["en", "ja"]
    assert [r["id"] for r in story["reports"]] == [first, toto, ledger]
    assert story["reports"][1] == {
        "id": toto, "outlet": "toto", "outlet_title": "Toto Shimpo", "lang": "ja",
        "title": "台湾海峡で中国軍が演習", "link": "https://news.example.org/t1",
        "published": "2025-12-02T09:05:00Z",
    }  # fmt: skip
    assert story["update"] is None
    assert [a["feed_title"] for a in item["also"]] == ["Toto Shimpo", "Pacific Ledger"]
    grown = update["groups"][0]["items"][0]["story"]
    assert grown["update"] == {"outlets": ["hanbando"], "languages": ["ko"], "severity_was": None}
    assert len(grown["reports"]) == 4


def test_an_unlinked_item_waits_for_its_story_but_not_forever(world: World) -> None:
    channels = world.channels(email_channels(25))
    Outbox(world.store).route_start("desk-now", NOW - HOUR)
    world.add("w1", "PLA drills in the Taiwan Strait", ["strait"], linked=False)
    assert world.freeze(channels, NOW + timedelta(seconds=2), FEEDS) is None  # cycle still on
    frozen = world.freeze(channels, NOW + LINK_WAIT, FEEDS)
    assert frozen is not None  # linking is late (a feed stalls): it goes out on its own


def test_reports_sent_before_they_were_linked_count_as_the_story_sent(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port, "    updates: true\n"))
        Outbox(world.store).route_start("desk-now", NOW - HOUR)
        first = world.add("w1", "PLA drills in the Taiwan Strait", ["strait"], linked=False)
        assert world.freeze(channels, NOW + LINK_WAIT, FEEDS) is not None  # went out alone
        world.store.save_links([NewLink(first, -1, 1.0, ("late",))])  # linked at last
        world.add("w2", "PLA drills: day two", ["strait"], published=NOW + HOUR, join=first)
        assert freeze(world, channels, 70) is None  # same outlet and language: no growth
        world.add("t1", "台湾海峡で演習", ["strait"], feed="toto", lang="ja",
                  published=NOW + 2 * HOUR, join=first)  # fmt: skip
        assert freeze(world, channels, 130) is not None
        assert send(world, channels, NOW + 3 * HOUR) == [True, True]
    subject, _text, _html = plain(smtp.messages[1].data)
    assert subject.startswith("[monitor] 1 update: ") and subject.endswith(
        "(update: +1 outlet, +ja)"
    )


def test_max_items_counts_stories_and_leaves_the_rest_pending(world: World) -> None:
    channels = world.channels(email_channels(25, "    max_items: 1\n"))
    Outbox(world.store).route_start("desk-now", NOW - HOUR)
    ids = three_outlets(world)
    other = world.add("x", "Economy: exports fall", ["economy"], feed="ledger")
    assert freeze(world, channels) is not None
    assert set(shown(world, "desk-now")) == set(ids)  # the critical story, all three reports
    assert freeze(world, channels, 11) is not None
    assert shown(world, "desk-now")[other] == 1  # the next digest


def test_frozen_bytes_stay_when_the_story_grows(world: World) -> None:
    channels = world.channels(email_channels(25, "    updates: true\n"))
    Outbox(world.store).route_start("desk-now", NOW - HOUR)
    first, *_ = three_outlets(world)
    digest_id = freeze(world, channels)
    assert digest_id is not None
    before = Outbox(world.store).get(digest_id)
    world.add("h1", "대만해협 훈련", ["strait"], feed="hanbando", lang="ko",
              published=NOW + HOUR, join=first)  # fmt: skip
    after = Outbox(world.store).get(digest_id)
    assert before is not None and after is not None and before.body == after.body


def test_a_slack_body_says_who_reported_it(world: World) -> None:
    with WebhookCatcher() as hook:
        slack = hook_channels(hook.url).replace("secret_env: HOOK_SECRET}", "format: slack}")
        channels = world.channels(slack)
        Outbox(world.store).route_start("ops-now", NOW - HOUR)
        three_outlets(world)
        assert freeze(world, channels) is not None
        assert send(world, channels, NOW + HOUR) == [True]
    text = json.dumps(json.loads(hook.requests[0].body), ensure_ascii=False)
    assert (
        "_Reported by 3 outlets in en, ja:_ Asia Wire (en): <https://news.example.org/w1|" in text
    )
    assert "Toto Shimpo (ja): <https://news.example.org/t1|台湾海峡で中国軍が演習>" in text


def test_a_language_preference_takes_regional_spellings_of_it() -> None:
    def report(n: int, lang: str) -> StoredItem:
        item = Item("f", f"g{n}", None, f"t{n}", "", "", None, lang, NOW, NOW, f"h{n}")
        return StoredItem(n, item)

    reports = [report(1, "en"), report(2, "zh-TW"), report(3, "ja")]
    assert headline(reports, ["zh"]).id == 2  # zh takes zh-TW
    assert headline(reports, ["zh-cn", "ja"]).id == 3  # zh-cn does not
    assert headline(reports, ["ko"]).id == 1  # none preferred: the earliest


def test_a_story_told_many_times_lists_twenty_reports_and_says_how_many_more() -> None:
    lead = make_entry(0, "Quake off Aomori", (QUAKE,))
    others = [
        make_entry(n, f"Report {n}", (QUAKE,), hours=n, feed=f"Outlet {n}") for n in range(1, 25)
    ]
    text = email_part(render_email(make_digest([story_of(lead, *others)]), NOW).body, "plain")
    assert text is not None and "Reported by 25 outlets in en:" in text
    assert text.count("\n    - ") == REPORTS_MAX and "    ... and 5 more" in text
