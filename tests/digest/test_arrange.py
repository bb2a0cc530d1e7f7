"""Arranging digests (monitor/digest/arrange.py): pure logic on hand-made digests.
Expected: entries are stories as collected (never merged by text), each entry in exactly one
group, severity-then-newest order, and a bounded subject naming the count and top topics
(updates counted apart and marked)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.digest.arrange import SUBJECT_MAX, Group, arrange, subject
from monitor.digest.storyfirst import merge_rules
from monitor.digest.storyview import DigestStory, StoryReport, StoryUpdate
from monitor.models import (
    Digest,
    DigestEntry,
    EmailReceiver,
    Item,
    Receiver,
    Route,
    RuleRef,
    SentBefore,
    SmtpServer,
    WebhookReceiver,
)

T0 = datetime(2025, 12, 1, 0, 0, tzinfo=UTC)
TAIWAN = RuleRef("taiwan-strait", "Taiwan Strait military pressure", "critical", {}, ("PLA",))
KOREA = RuleRef("korea-missiles", "North Korean missiles", "high", {}, ("missile*",))
QUAKE = RuleRef("asia-quakes", "Earthquakes in Asia", "medium", {}, ("quake",))
RECEIVER = Receiver(
    "desk",
    email=EmailReceiver(("desk@example.org",), "monitor@example.org", SmtpServer("localhost")),
    webhook=WebhookReceiver("https://hooks.example.org/x"),
)


def make_entry(
    item_id: int,
    title: str,
    rules: tuple[RuleRef, ...],
    *,
    hours: float = 0,
    summary: str = "",
    regions: tuple[str, ...] = (),
    feed: str = "Asia Wire",
    link: str | None = None,
    lang: str | None = "en",
) -> DigestEntry:
    item = Item(
        feed_id=feed.lower().replace(" ", "-"),
        guid=f"g{item_id}",
        link=link if link is not None else f"https://news.example/{item_id}",
        title=title,
        summary=summary,
        html="<b>never shown</b>",
        author=None,
        lang=lang,
        published=T0 + timedelta(hours=hours),
        first_seen=T0,
        content_hash=str(item_id),
        regions=regions,
    )
    return DigestEntry(item_id=item_id, item=item, feed_title=feed, rules=rules)


def make_digest(
    entries: list[DigestEntry],
    *,
    group_by: tuple[str, ...] = ("rule",),
    truncated: int = 0,
    receiver: Receiver = RECEIVER,
    timezone: str = "Asia/Tokyo",
    already: tuple[SentBefore, ...] = (),
    **route_keys: Any,
) -> Digest:
    route = Route(id="asia", receiver=receiver.id, group_by=group_by, timezone=timezone)
    route = replace(route, **route_keys)
    published = [e.item.published for e in entries]
    return Digest(
        id="d-2025-12-02-asia",
        route=route,
        receiver=receiver,
        created=T0 + timedelta(days=1),
        window_start=min(published, default=None),
        window_end=max(published, default=T0 + timedelta(days=1)),
        entries=tuple(entries),
        truncated=truncated,
        already=already,
    )


def sample() -> list[DigestEntry]:
    return [
        make_entry(1, "Magnitude 7.5 quake off Aomori", (QUAKE,), hours=3, regions=("JP",)),
        make_entry(2, "North Korea fires ballistic missiles", (KOREA,), hours=1, regions=("KP",)),
        make_entry(3, "PLA drills around Taiwan", (TAIWAN,), hours=2, regions=("CN", "TW")),
        make_entry(4, "Coast guard tracks ships off Kinmen", (TAIWAN,), hours=5, regions=("TW",)),
        make_entry(5, "North Korea missile test, Japan protests", (KOREA, TAIWAN), hours=6),
    ]


def keys(groups: list[Group]) -> list[tuple[str, list[int]]]:
    return [(g.key, [e.item_id for e in g.entries]) for g in groups]


def test_group_by_rule_puts_each_entry_once_under_its_most_severe_rule() -> None:
    groups = arrange(make_digest(sample()))
    # Entry 5 matched KOREA (high) and TAIWAN (critical): it is shown once, under TAIWAN.
    assert keys(groups) == [
        ("rule:taiwan-strait", [5, 4, 3]),
        ("rule:korea-missiles", [2]),
        ("rule:asia-quakes", [1]),
    ]
    assert groups[0].title == "Taiwan Strait military pressure"


def test_group_by_region_uses_the_first_region() -> None:
    groups = arrange(make_digest(sample(), group_by=("region",)))
    assert keys(groups) == [
        ("region:-", [5]),
        ("region:TW", [4]),
        ("region:CN", [3]),
        ("region:KP", [2]),
        ("region:JP", [1]),
    ]
    assert groups[0].title == "No region"


def test_group_by_severity_and_combined_keys() -> None:
    by_severity = arrange(make_digest(sample(), group_by=("severity",)))
    assert keys(by_severity) == [
        ("severity:critical", [5, 4, 3]),
        ("severity:high", [2]),
        ("severity:medium", [1]),
    ]
    assert by_severity[0].title == "Critical"
    combined = arrange(make_digest(sample(), group_by=("severity", "region")))
    assert combined[0].key == "severity:critical/region:-"
    assert combined[0].title == "Critical · No region"
    assert keys(arrange(make_digest(sample(), group_by=())))[0] == ("all", [5, 4, 3, 2, 1])


def story_of(entry: DigestEntry, *others: DigestEntry, sid: int = 7, **update: Any) -> DigestEntry:
    """`entry` as the headline of a stored story told by it and `others`."""
    reports = tuple(
        StoryReport(e.item_id, e.item.feed_id, e.feed_title, e.item.lang, e.item.title,
                    e.item.link, e.item.published)
        for e in sorted([entry, *others], key=lambda e: e.item.published)
    )  # fmt: skip
    story = DigestStory(sid, reports, StoryUpdate(**update) if update else None)
    return replace(entry, story=story)


def test_look_alike_entries_are_never_merged_by_text() -> None:
    # Two incidents at one shoal, worded alike: the stored stories decide what is one story,
    # never text similarity in the digest (that hid a distinct development once).
    first = make_entry(10, "Water cannon used on Philippine boats at Scarborough Shoal", (QUAKE,))
    second = make_entry(
        11, "Water cannon used on Philippine boats at Scarborough Shoal again", (QUAKE,), hours=30
    )
    groups = arrange(make_digest([first, second], group_by=("story",)))
    assert keys(groups) == [("story:11", [11]), ("story:10", [10])]
    assert subject(make_digest([first, second])).startswith("[monitor] 2 alerts: ")


def test_merge_rules_keeps_each_rule_once_with_its_terms_merged() -> None:
    ja = RuleRef("taiwan-strait", "Taiwan Strait military pressure", "critical", {}, ("演習",))
    a = make_entry(1, "中国軍、台湾周辺で大規模演習", (TAIWAN,), feed="東都新報")
    b = make_entry(2, "PLA drills", (ja, KOREA), hours=1)
    merged = merge_rules([a, b])
    assert [r.id for r in merged] == ["taiwan-strait", "korea-missiles"]
    assert merged[0].terms == ("PLA", "演習")


def test_an_update_is_counted_and_marked_in_the_subject() -> None:
    news = make_entry(1, "Quake off Aomori", (QUAKE,), hours=3)
    grown = make_entry(2, "PLA drills around Kinmen", (TAIWAN,), hours=1, feed="Asia Wire")
    korean = make_entry(3, "금먼 주변 훈련", (TAIWAN,), hours=2, feed="Hanbando Ilbo", lang="ko")
    update = story_of(grown, korean, outlets=("hanbando-ilbo",), languages=("ko",))
    assert subject(make_digest([update])) == (
        "[monitor] 1 update: PLA drills around Kinmen (update: +1 outlet, +ko)"
    )
    both = subject(make_digest([news, update]))
    assert both.startswith("[monitor] 1 alert, 1 update: PLA drills around Kinmen (update: ")
    rose = story_of(grown, korean, outlets=(), languages=(), severity_was="high")
    assert subject(make_digest([rose])).endswith("(update: now critical)")


def test_subject_counts_and_names_top_topics() -> None:
    text = subject(make_digest(sample()))
    # The third topic would pass SUBJECT_MAX: the subject says there is more instead.
    assert text == (
        "[monitor] 5 alerts: Taiwan Strait military pressure (3, critical), "
        "North Korean missiles (1, high) ..."
    )
    assert subject(make_digest([])) == "[monitor] no new alerts"


def test_subject_names_the_headlines_of_up_to_three_entries() -> None:
    one = subject(make_digest(sample()[1:2]))
    assert one == "[monitor] 1 alert: North Korea fires ballistic missiles (high)"
    two = subject(make_digest(sample()[:2]))
    # Most severe first; only high and critical are spelled out.
    assert two == (
        "[monitor] 2 alerts: North Korea fires ballistic missiles (high); "
        "Magnitude 7.5 quake off Aomori"
    )
    three = subject(make_digest(sample()[:3]))
    assert three.startswith("[monitor] 3 alerts: PLA drills around Taiwan (critical); North")
    assert len(three) <= SUBJECT_MAX and three.endswith(" ...")  # the third did not fit
    four = subject(make_digest(sample()[:4]))
    assert four.startswith("[monitor] 4 alerts: Taiwan Strait military pressure (2, critical)")


def test_subject_counts_stories_as_the_headings_do() -> None:
    wire = make_entry(10, "Philippine vessels hit by water cannon near Scarborough", (QUAKE,))
    dispatch = make_entry(11, "Manila releases water-cannon video", (QUAKE,), hours=4)
    shoal = story_of(wire, dispatch)  # one stored story told by two outlets: one entry
    korea = [
        make_entry(20, "North Korea fires ballistic missiles", (KOREA,), hours=1),
        make_entry(21, "Seoul raises its alert level", (KOREA,), hours=2),
        make_entry(22, "Tokyo protests over the launch", (KOREA,), hours=3),
    ]
    digest = make_digest([shoal, *korea])
    groups = arrange(digest)
    assert [(g.title, len(g.entries)) for g in groups] == [
        ("North Korean missiles", 3),
        ("Earthquakes in Asia", 1),  # the two reports of one story are one entry
    ]
    assert subject(digest) == (
        "[monitor] 4 alerts: North Korean missiles (3, high), Earthquakes in Asia (1)"
    )


def test_subject_is_one_line_whatever_the_titles_hold() -> None:
    folded = RuleRef("r", "Military pressure\nin the Taiwan Strait\n", "high")
    entries = [make_entry(i, f"t{i}", (folded,), hours=i) for i in range(5)]
    assert subject(make_digest(entries)) == (
        "[monitor] 5 alerts: Military pressure in the Taiwan Strait (5, high)"
    )
    headline = subject(make_digest([make_entry(1, "  PLA drills\r\naround Taiwan ", (folded,))]))
    assert headline == "[monitor] 1 alert: PLA drills around Taiwan (high)"


def test_subject_is_bounded() -> None:
    rules = [RuleRef(f"r{i}", f"A rather long topic title number {i}", "low") for i in range(9)]
    entries = [make_entry(i, f"t{i}", (rule,), hours=i) for i, rule in enumerate(rules)]
    text = subject(make_digest(entries))
    assert len(text) <= SUBJECT_MAX
    assert text.endswith(" ...")
    one = [make_entry(1, "x" * 300, (RuleRef("r", "a rule", "info"),))]
    long_one = subject(make_digest(one))
    assert len(long_one) == SUBJECT_MAX and long_one.endswith("x…")
