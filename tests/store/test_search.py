"""Searching stored items in the query language of rules (OR, NOT, NEAR, fields, scopes), and
the plan for common words, on both backends: a real SQLite file and a real PostgreSQL
database (tests/conftest.py `module_db_target`).

`CORPUS` (from test_store) is given languages and regions here; each test names the items it
expects by guid, newest first. The plan tests count SQLite's virtual machine steps (progress
handler), and the rows PostgreSQL's plan read (EXPLAIN ANALYZE), to show how much work a
search did: a common word must not read every item.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.match.engine import Matcher
from monitor.match.query import parse_query
from monitor.match.rule import Rule
from monitor.models import Feed
from monitor.store import Store
from monitor.store.ftsquery import SearchQueryError
from tests.store.test_store import CORPUS, T0, guids, make_item, state

LANGS = {"ja-missile": "ja", "ja-strait": "ja", "zh-mofa": "zh-cn", "ko-missile": "ko"}
REGIONS = {
    "en-drills": ("CN", "TW"),
    "ja-missile": ("JP", "KP"),
    "ja-strait": ("CN", "TW"),
    "zh-mofa": ("CN", "TW"),
    "ko-missile": ("KP", "KR"),
    "en-vote": ("UN",),
}
TAGS = {"Wire": ["korea"], "asia": ["asia"]}


@pytest.fixture(scope="module")
def tagged(module_db_target: str | Path) -> Iterator[Store]:
    with Store(module_db_target) as store:
        for feed_id in ("asia", "korea"):
            items = [
                make_item(
                    g,
                    t,
                    s,
                    feed_id=f,
                    published=T0 + timedelta(hours=h),
                    lang=LANGS.get(g, "en"),
                    regions=REGIONS.get(g, ()),
                )
                for f, g, t, s, h in CORPUS
                if f == feed_id
            ]
            store.save_items(feed_id, items, state(feed_id))
        yield store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("北朝鮮 ミサイル", ["ja-missile"]),  # several words: all of them
        ("taiwan OR 北朝鮮", ["ja-missile", "en-calm", "en-drills"]),
        ("taiwan NOT drills", ["en-calm"]),
        ("taiwan -drills", ["en-calm"]),
        ("(taiwan OR 台湾) -calm", ["zh-mofa", "ja-strait", "en-drills"]),
        ("taiwan AND (calm OR ships)", ["en-calm", "en-drills"]),
        ("title:ships", []),
        ("summary:ships", ["en-drills"]),
        ("title:(北朝鮮 OR 北한) summary:日本海", ["ja-missile"]),
        ("taiwan NEAR/1 strait", ["en-drills"]),  # next to each other
        ("taiwan NEAR/3 strait", ["en-calm", "en-drills"]),  # "Taiwan says the strait"
        ("(taiwan OR pla) NEAR/2 drills", []),  # "PLA holds live-fire drills": 4 apart
        ("(taiwan OR pla) NEAR/4 drills", ["en-drills"]),
        ("title:taiwan NEAR/3 summary:ships", []),  # never near: different fields
        ("region:KP", ["ko-missile", "ja-missile"]),
        ("region:kp 북한", ["ko-missile"]),
        ("region:KP OR taiwan", ["ko-missile", "ja-missile", "en-calm", "en-drills"]),
        ("region:TW -taiwan", ["zh-mofa", "ja-strait"]),  # a NOT with only a scope beside it
        ("NOT 台湾 region:TW", ["en-drills"]),
        ("lang:ja", ["ja-strait", "ja-missile"]),
        ("lang:zh", ["zh-mofa"]),  # zh-cn too
        ("lang:z", []),
        ("feed:korea -북한", ["en-vote"]),
        ("tag:wire", ["en-vote", "ko-missile"]),  # tags without case, as in rules
        ("tag:nowhere", []),
        ("tag:asia AND (missile OR ミサイル)", ["ja-missile"]),
    ],
)
def test_search_speaks_the_rule_language(tagged: Store, query: str, expected: list[str]) -> None:
    assert guids(tagged.search(query, tag_feeds=TAGS)) == expected
    # The same query as an alert rule matches the same items.
    rule = Rule(id="q", title="q", query=query, tree=parse_query(query))
    matcher = Matcher.compile([rule])
    feeds = {f: Feed(f, f"https://{f}.example.org/", tags=tuple(t for t in TAGS if f in TAGS[t]))
             for f in ("asia", "korea")}  # fmt: skip
    stored = tagged.search(None, limit=100)
    by_rule = [s.item.guid for s in stored if matcher.match(s.item, feeds[s.item.feed_id])]
    assert by_rule == expected


@pytest.mark.parametrize(
    ("query", "column", "words"),
    [
        ("(taiwan OR china", 1, "missing ')'"),
        ("NOT taiwan", 1, "matches only by what is absent"),
        ("taiwan OR", 10, "expected a term after OR"),
        ("%", 1, "no letters or digits"),
        ('"Taiwan Strait', 1, "unclosed quote"),
        ("titel:taiwan", 1, "unknown field titel:"),
    ],
)
def test_a_bad_query_is_one_line_naming_the_column(
    tagged: Store, query: str, column: int, words: str
) -> None:
    with pytest.raises(SearchQueryError) as raised:
        tagged.search(query)
    message = str(raised.value)
    assert message.startswith(f"search: column {column} of {query!r}: ")
    assert words in message and "\n" not in message


def test_a_near_inside_a_near_is_refused_with_what_to_do(tagged: Store) -> None:
    with pytest.raises(SearchQueryError, match="monitor rules test --since"):
        tagged.search("(taiwan NEAR/2 strait) NEAR/5 drills")


# --- the plan for common words --------------------------------------------------------------

COUNT = 3000


@pytest.fixture(scope="module")
def crowd(module_db_target: str | Path) -> Iterator[Store]:
    """COUNT items that all say "common", published in an order unlike their ids; one also
    says "rare", and every 300th "sometimes". Summaries are long, as real ones are."""
    hours = list(range(COUNT))
    random.Random(7).shuffle(hours)
    items = [
        make_item(
            f"g{n}",
            f"common story {n}"
            + (" rare" if n == 1500 else "")
            + (" sometimes" if n % 300 == 0 else ""),
            "filler " * 300,
            feed_id="asia" if n % 2 else "korea",
            published=T0 + timedelta(hours=h),
        )
        for n, h in enumerate(hours)
    ]
    with Store(module_db_target) as store:
        for feed_id in ("asia", "korea"):
            mine = [i for i in items if i.feed_id == feed_id]
            store.save_items(feed_id, mine, state(feed_id))
        yield store


def steps(store: Store, run: object) -> int:
    """SQLite VM steps (in hundreds) that `run()` took on the store's connection."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    store._db.conn.set_progress_handler(tick, 100)
    try:
        assert callable(run)
        run()
    finally:
        store._db.conn.set_progress_handler(None, 100)
    return count[0]


def rows_read(store: Store, run: object) -> int:
    """Rows PostgreSQL's plans read (scans' rows, filtered ones too) for the statements
    `run()` made: each is run again under EXPLAIN ANALYZE. The planner is given statistics
    first, as autovacuum gives it on a live database."""
    assert store._pg is not None and callable(run)
    store._rows("ANALYZE")
    seen: list[tuple[str, Any]] = []
    through = store._pg.rows

    def spy(sql: str, params: Any = ()) -> list[dict[str, Any]]:
        seen.append((sql, params))
        return through(sql, params)

    store._pg.rows = spy  # type: ignore[method-assign]
    try:
        run()
    finally:
        del store._pg.rows
    explained = [through(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", p) for sql, p in seen]
    return sum(_scanned(plan[0]["QUERY PLAN"][0]["Plan"]) for plan in explained)


def _scanned(node: dict[str, Any]) -> int:
    own = 0
    if "Scan" in node["Node Type"]:
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    return int(own) + sum(_scanned(child) for child in node.get("Plans", []))


def work(store: Store, run: object) -> int:
    return steps(store, run) if store.backend == "sqlite" else rows_read(store, run)


def newest(store: Store, keep: object, limit: int) -> list[str]:
    """The expected answer, by brute force over every item."""
    assert callable(keep)
    every = store.search(None, limit=COUNT)
    return [s.item.guid for s in every if keep(s)][:limit]


def test_a_common_word_does_not_read_every_item(crowd: Store) -> None:
    reading_all = work(crowd, lambda: crowd.search(None, limit=COUNT))
    common = work(crowd, lambda: crowd.search("common", limit=5))
    assert common * 5 < reading_all, (common, reading_all)


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("common", lambda s: True),
        ("common story", lambda s: True),
        ("common -sometimes", lambda s: "sometimes" not in s.item.title),
        ("sometimes", lambda s: "sometimes" in s.item.title),
        ("rare", lambda s: "rare" in s.item.title),
        ("common feed:asia", lambda s: s.item.feed_id == "asia"),
        ("nothing-like-it", lambda s: False),
    ],
)
@pytest.mark.parametrize("limit", [1, 5, 50])
def test_every_plan_gives_the_newest_first(
    crowd: Store, query: str, keep: object, limit: int
) -> None:
    assert guids(crowd.search(query, limit=limit)) == newest(crowd, keep, limit)


def test_since_and_a_common_word_stay_newest_first(crowd: Store) -> None:
    since = T0 + timedelta(hours=COUNT - 100)
    found = crowd.search("common", since=since, limit=500)
    assert len(found) == 100
    assert guids(found) == newest(crowd, lambda s: s.item.published >= since, 500)


def test_an_empty_store_searches_fine(db_target: str | Path) -> None:
    with Store(db_target) as store:
        assert store.search("common") == []
