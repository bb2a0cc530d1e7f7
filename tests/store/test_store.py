"""The store stage against real SQLite files and real PostgreSQL databases.

Fixtures: `CORPUS` is a handful of short headlines written for these tests in English,
Japanese, Chinese and Korean (two feeds, published an hour apart, newest last); each search
test names the items it expects by guid. `en-calm` says "sun" so that a search for `UN` can
show it does not find it. Every store lives in a fresh SQLite file under tmp_path, then in a
fresh PostgreSQL database (`db_target`): each test that takes `store` or `corpus` runs on both.
Tests about the SQLite file itself take a path of their own; their PostgreSQL counterparts
are in test_store_pg.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import StoreError
from monitor.match.textnorm import search_text
from monitor.models import FeedState, Item, StoredItem, StoreResult
from monitor.store import Store
from monitor.store.ftsquery import SearchQueryError
from monitor.store.rows import FeedSchedule
from monitor.store.schema import MIGRATION_NAMES

T0 = datetime(2025, 12, 1, 0, 0, tzinfo=UTC)


def make_item(guid: str, title: str, summary: str = "", **kw: Any) -> Item:
    values: dict[str, Any] = {
        "feed_id": "asia",
        "guid": guid,
        "link": f"https://news.example.org/{guid}",
        "title": title,
        "summary": summary,
        "html": f"<p>{summary}</p>",
        "author": None,
        "lang": "en",
        "published": T0,
        "first_seen": T0,
        "content_hash": f"{title}|{summary}",
        "regions": (),
    }
    values.update(kw)
    return Item(**values)


def state(feed_id: str = "asia", **kw: Any) -> FeedState:
    return FeedState(feed_id, f"https://{feed_id}.example.org/feed.xml", **kw)


# (feed, guid, title, summary, hours after T0)
CORPUS = [
    ("asia", "en-drills", "PLA holds live-fire drills near the Taiwan Strait", "Ships circled.", 0),
    ("asia", "en-calm", "Taiwan says the strait is calm", "No incursions; the sun shone.", 1),
    ("asia", "ja-missile", "北朝鮮が弾道ミサイルを発射", "防衛省によると日本海に落下した。", 2),
    ("asia", "ja-strait", "台湾海峡で中国軍が演習", "空母も参加した。", 3),
    ("asia", "zh-mofa", "外交部回应台湾问题", "发言人在记者会上表示反对。", 4),
    (
        "korea",
        "ko-missile",
        "북한, 동해상으로 탄도미사일 발사",
        "합참은 북한의 발사를 확인했다.",
        5,
    ),
    ("korea", "en-vote", "UN vote: 50% of members abstain", "The_resolution failed.", 6),
]


def fill(store: Store) -> None:
    for feed_id in ("asia", "korea"):
        items = [
            make_item(g, t, s, feed_id=f, published=T0 + timedelta(hours=h))
            for f, g, t, s, h in CORPUS
            if f == feed_id
        ]
        store.save_items(feed_id, items, state(feed_id))


@pytest.fixture
def store(db_target: str | Path) -> Iterator[Store]:
    with Store(db_target) as s:
        yield s


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store on a SQLite file, for the tests about the file itself (WAL, locks, pages)."""
    with Store(tmp_path / "state" / "monitor.db") as s:
        yield s


@pytest.fixture(scope="module")
def corpus(module_db_target: str | Path) -> Iterator[Store]:
    """A store holding CORPUS, shared by the read-only search tests."""
    with Store(module_db_target) as s:
        fill(s)
        yield s


def guids(found: Sequence[StoredItem]) -> list[str]:
    return [s.item.guid for s in found]


def raw(path: Path | str) -> sqlite3.Connection:
    """A second, plain connection: what another process would see."""
    return sqlite3.connect(path, isolation_level=None, timeout=0)


def table(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query, as tuples, on either backend (what the tables hold, not what the
    store's methods make of them)."""
    return [tuple(row.values()) for row in store._rows(sql)]


# --- opening and migrating -----------------------------------------------------------------


def test_open_creates_directories_wal_and_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "monitor.db"
    Store(path).close()
    Store(path).close()  # reopening applies nothing twice
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names == MIGRATION_NAMES  # all applied, in order
    merge = dict(conn.execute("SELECT k, v FROM items_fts_config WHERE k LIKE '%merge'"))
    assert merge == {"automerge": 8, "crisismerge": 64}
    conn.close()


def test_stores_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    path, barrier, errors = tmp_path / "monitor.db", threading.Barrier(4), []

    def open_close() -> None:
        barrier.wait()
        try:
            Store(path).close()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = raw(path)
    assert conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone() == (
        len(MIGRATION_NAMES),
    )
    conn.close()


def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match="not a monitor database") as info:
        Store(path)
    assert str(path) in str(info.value)


def test_a_path_under_a_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where a directory should be")
    path = tmp_path / "state" / "monitor.db"
    with pytest.raises(StoreError, match="cannot open") as info:
        Store(path)
    assert str(path) in str(info.value)


def test_a_database_from_a_newer_monitor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    Store(path).close()
    conn = raw(path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
        " VALUES ('monitor', 'm999_from_the_future', '2030-01-01')"
    )
    conn.close()
    with pytest.raises(StoreError, match=r"newer monitor.*upgrade"):
        Store(path)


def test_disk_full_is_a_store_error_and_leaves_nothing_half_written(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    # A page limit is SQLite's own way to hit SQLITE_FULL without filling a real disk.
    pages = store._db.conn.execute("PRAGMA page_count").fetchone()[0]
    store._db.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    items = [make_item(f"g{n}", f"headline {n}", "x" * 2000) for n in range(50)]
    with pytest.raises(StoreError, match="disk is full"):
        store.save_items("asia", items, state())
    assert store.count_items() == 0
    assert store.get_state("asia") is None


# --- feeds' state ---------------------------------------------------------------------------


def test_state_round_trips_every_field(store: Store) -> None:
    full = state(
        configured_url="https://asia.example.org/old.xml",
        etag='W/"abc"',
        last_modified="Mon, 01 Dec 2025 00:00:00 GMT",
        body_hash="sha256:00ff",
        last_attempt=T0,
        last_success=T0 - timedelta(hours=1),
        consecutive_errors=3,
        last_error="HTTP 503",
        next_due=datetime(2025, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=9))),
        gone=True,
    )
    store.save_state(full)
    back = store.get_state("asia")
    assert back == full
    assert back is not None and back.next_due is not None and back.next_due.tzinfo is UTC
    assert store.states() == {"asia": full}


def test_save_state_overwrites_and_forget_removes(store: Store) -> None:
    store.save_state(state(etag="one", consecutive_errors=2))
    store.save_state(state(etag="two"))
    assert store.get_state("asia") == state(etag="two")
    store.forget_feed_state("asia")
    assert store.get_state("asia") is None
    assert store.states() == {}


def test_states_of_some_feeds_are_those_stored_of_them(store: Store) -> None:
    for feed_id in ("asia", "europe", "korea"):
        store.save_state(state(feed_id, etag=feed_id))
    some = store.states(["korea", "asia", "not-polled-yet"])
    assert some == {"asia": state("asia", etag="asia"), "korea": state("korea", etag="korea")}
    assert store.states([]) == {}
    assert set(store.states()) == {"asia", "europe", "korea"}


def test_schedules_are_what_deciding_a_feed_is_due_reads_of_its_state(store: Store) -> None:
    due = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    states = [
        state("asia", configured_url="https://old.example.org/", etag="e", next_due=due),
        state("europe", consecutive_errors=3, last_error="timed out", next_due=due),
        state("korea", gone=True, known_items=b"\x01" * 40),
    ]
    for s in states:
        store.save_state(s)
    assert store.schedules() == {
        s.feed_id: FeedSchedule(s.configured_url, s.next_due, s.consecutive_errors, s.gone)
        for s in states
    }


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.save_state(state(last_attempt=datetime(2025, 1, 1)))


# --- saving items ---------------------------------------------------------------------------


def test_save_items_counts_new_updated_unchanged_and_saves_state(store: Store) -> None:
    first = [make_item("a", "Alpha"), make_item("b", "Beta"), make_item("c", "Gamma")]
    assert store.save_items("asia", first, state(etag="1")) == StoreResult(new=3)
    again = [
        make_item("a", "Alpha"),  # same hash: unchanged
        make_item("b", "Beta, corrected"),  # new hash: updated
        make_item("d", "Delta"),  # new guid
    ]
    assert store.save_items("asia", again, state(etag="2")) == StoreResult(1, 1, 1)
    assert store.count_items() == 4
    assert store.get_state("asia") == state(etag="2")


def test_an_edited_item_is_updated_in_place(store: Store) -> None:
    store.save_items("asia", [make_item("a", "Old title", regions=("TW",))], state())
    [before] = store.search(None)
    edited = make_item(
        "a", "New title", "more", first_seen=T0 + timedelta(days=1), regions=("CN", "JP")
    )
    store.save_items("asia", [edited], state())
    [after] = store.search(None)
    assert (after.id, after.item.first_seen) == (before.id, T0)
    assert (after.item.title, after.item.html, after.item.regions) == (
        "New title",
        "<p>more</p>",
        ("CN", "JP"),
    )
    assert before.updated is None and after.updated is not None
    assert guids(store.search("new title")) == ["a"] and store.search("old title") == []
    assert table(store, "SELECT code FROM item_regions ORDER BY code") == [("CN",), ("JP",)]
    assert table(store, "SELECT rowid, title FROM items_fts") == [(after.id, "new title")]


def test_an_item_with_the_same_hash_is_not_rewritten(store: Store) -> None:
    store.save_items("asia", [make_item("a", "Kept", content_hash="h1")], state())
    store.save_items("asia", [make_item("a", "Ignored", content_hash="h1")], state())
    [kept] = store.search(None)
    assert (kept.item.title, kept.updated) == ("Kept", None)


def test_a_guid_repeated_in_one_batch_is_stored_once(store: Store) -> None:
    batch = [make_item("a", "First"), make_item("a", "Second")]
    assert store.save_items("asia", batch, state()) == StoreResult(new=1, unchanged=1)
    assert [s.item.title for s in store.search(None)] == ["First"]


def test_save_items_is_one_transaction(store: Store) -> None:
    bad_state = state(last_attempt=datetime(2025, 1, 1))  # naive: fails after the items
    with pytest.raises(ValueError):
        store.save_items("asia", [make_item("a", "Alpha")], bad_state)
    assert store.count_items() == 0


def test_items_of_another_feed_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="must be of that feed"):
        store.save_items("asia", [make_item("a", "x", feed_id="korea")], state())


def test_items_round_trip_with_utc_datetimes_and_regions(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    item = make_item(
        "a", "T", "S", author="Desk", lang="ja", regions=("KP", "JP"),
        published=datetime(2025, 12, 1, 9, 0, tzinfo=tokyo),
    )  # fmt: skip
    store.save_items("asia", [item], state())
    [back] = store.search(None)
    assert back.item == item
    assert back.item.published.tzinfo is UTC and back.item.published.hour == 0
    rows = table(store, "SELECT item_id, code FROM item_regions ORDER BY code")
    assert rows == [(back.id, "JP"), (back.id, "KP")]


def test_get_items_keeps_the_order_asked_and_skips_unknown_ids(store: Store) -> None:
    store.save_items("asia", [make_item("a", "A"), make_item("b", "B")], state())
    ids = {s.item.guid: s.id for s in store.search(None)}
    assert guids(store.get_items([ids["b"], 999, ids["a"]])) == ["b", "a"]
    assert store.get_items([]) == []


def test_prune_deletes_old_items_with_their_index_and_regions(store: Store) -> None:
    old = make_item("old", "Blockade drills", first_seen=T0 - timedelta(days=100), regions=("TW",))
    new = make_item("new", "Blockade lifted", first_seen=T0, regions=("TW",))
    store.save_items("asia", [old, new], state())
    assert store.prune(T0 - timedelta(days=90)) == 1
    assert guids(store.search("blockade")) == ["new"]
    assert store.count_items() == 1
    assert table(store, "SELECT count(*) FROM item_regions") == [(1,)]
    assert table(store, "SELECT rowid, title FROM items_fts") == [
        (store.search(None)[0].id, "blockade lifted")
    ]


def test_count_items_per_feed(corpus: Store) -> None:
    assert (corpus.count_items(), corpus.count_items("korea"), corpus.count_items("x")) == (7, 2, 0)


# --- search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("taiwan", ["en-calm", "en-drills"]),  # newest first
        ("TAIWAN strait", ["en-calm", "en-drills"]),  # words ANDed, any order, any case
        ('"Taiwan Strait"', ["en-drills"]),  # a phrase keeps its order
        ('"strait taiwan"', []),
        ('"taiwan strait" drills', ["en-drills"]),
        ('"  taiwan   strait "', ["en-drills"]),  # a phrase's own spacing does not matter
        ("drill", []),  # Latin terms are whole words...
        ("drill*", ["en-drills"]),  # ...unless asked for a prefix
        ("UN", ["en-vote"]),  # not `sun` in en-calm
        ("sun", ["en-calm"]),
        ("北朝鮮", ["ja-missile"]),
        ("台湾海峡", ["ja-strait"]),
        ("台湾", ["zh-mofa", "ja-strait"]),  # Han terms match inside longer words
        ("湾", ["zh-mofa", "ja-strait"]),  # even one character
        ("臺灣", ["zh-mofa", "ja-strait"]),  # Traditional finds Simplified
        ("台湾問題", ["zh-mofa"]),  # 問 is the Traditional (and Japanese) 问
        ("ミサイル", ["ja-missile"]),  # kana too
        ("外交部", ["zh-mofa"]),
        ("台湾 外交部", ["zh-mofa"]),
        ("台湾 演習", ["ja-strait"]),
        ("海峡台湾", []),  # characters keep their order
        ("북한", ["ko-missile"]),  # also found as 북한의 (particle attached)
        ("미사일", []),  # Hangul terms start a word: not inside 탄도미사일
        ("탄도미사일 발사", ["ko-missile"]),
        ('"탄도미사일 발사"', ["ko-missile"]),
        ("50%", ["en-vote"]),  # punctuation is not part of a word
        ("resolution", ["en-vote"]),  # `The_resolution` is two words
        ("_", []),  # a word of no letter or digit the index keeps finds nothing
        ("50% vote", ["en-vote"]),
        ("ships", ["en-drills"]),  # the summary is searched too
        ("blockade", []),
    ],
)
def test_search_finds_terms_in_every_language(
    corpus: Store, query: str, expected: list[str]
) -> None:
    assert guids(corpus.search(query)) == expected


def test_search_without_query_lists_newest_first_with_filters(corpus: Store) -> None:
    everything = [g for _, g, *_ in reversed(CORPUS)]
    assert guids(corpus.search(None)) == everything
    assert guids(corpus.search("  ")) == everything
    assert guids(corpus.search(None, limit=2)) == everything[:2]
    assert corpus.search(None, limit=0) == []
    since = T0 + timedelta(hours=4)
    assert guids(corpus.search(None, since=since)) == everything[:3]
    assert guids(corpus.search(None, feed_id="korea")) == everything[:2]
    assert guids(corpus.search("missile", feed_id="asia")) == []
    assert guids(corpus.search("台湾", since=since)) == ["zh-mofa"]


def test_search_folds_text_and_query_alike(store: Store) -> None:
    items = [
        make_item("vn", "Typhoon nears Khánh Hòa", "Fishing boats return."),
        make_item("fw", "ＰＬＡ ｎａｖｙ drills", "Full-width letters."),
        make_item("tw", "臺灣海峽情勢", "國防部表示。"),  # Traditional
        make_item("pos", "Taiwan's coast guard", "Its ships."),
    ]
    store.save_items("asia", items, state())
    assert guids(store.search("khanh hoa")) == ["vn"]
    assert guids(store.search("KHÁNH")) == ["vn"]
    assert guids(store.search("PLA navy")) == ["fw"]
    assert guids(store.search("台湾海峡")) == ["tw"]  # Simplified finds Traditional
    assert guids(store.search("国防")) == ["tw"]
    assert guids(store.search("taiwan")) == ["pos"]  # a possessive still matches
    assert guids(store.search('"taiwan\'s coast"')) == ["pos"]


def test_search_by_region(store: Store) -> None:
    later = T0 + timedelta(hours=1)
    items = [
        make_item("tw", "Drills near Taiwan", regions=("TW", "CN")),
        make_item("kp", "Missile launch", regions=("KP",), published=later),
        make_item("jp", "Missile lands at sea", regions=("JP", "KP"), published=later),
    ]
    store.save_items("asia", items, state())
    assert guids(store.search(None, region="KP")) == ["jp", "kp"]
    assert guids(store.search(None, region="cn")) == ["tw"]  # codes in any case
    assert guids(store.search("missile", region="JP")) == ["jp"]
    assert guids(store.search("drills", region="KP")) == []
    assert store.search(None, region="FR") == []


def test_search_text_is_what_gets_indexed(store: Store) -> None:
    assert search_text("Taiwan Strait") == "taiwan strait"
    assert search_text("臺灣の北韓") == " 台 湾 の 北 韩 "  # each Han/kana character a token
    assert search_text("북한의 ＰＬＡ") == "북한의 pla"  # Hangul words stay whole
    store.save_items("asia", [make_item("a", "臺灣 Strait", "Ｘ")], state())
    assert table(store, "SELECT title, summary FROM items_fts") == [(" 台 湾  strait", "x")]


HOSTILE = [
    '"', '""', '"""', '"unclosed phrase', 'a"b"c', "AND", "OR NOT", "NEAR(taiwan strait)",
    "*", "taiwan*", "^taiwan", "title:taiwan", "(", ")", "{title summary}: x", "-taiwan",
    "'; DROP TABLE items; --", "\\", "\\%", "\x00", "a\x00b", "   \t\n ", "台湾 OR 北朝鮮",
    '""*', "**", "*taiwan", "taiwan**", '"taiwan"*', "a*b", "NEAR/3", "북한 AND", "台*",
]  # fmt: skip


def search_or_refuse(store: Store, query: str, limit: int = 50) -> list[StoredItem] | None:
    """The results, or None when the query was refused with a SearchQueryError (one line)."""
    try:
        return store.search(query, limit=limit)
    except SearchQueryError as error:
        assert "\n" not in str(error) and str(error).startswith("search: ")
        return None


@pytest.mark.parametrize("query", HOSTILE)
def test_search_input_is_never_syntax(corpus: Store, query: str) -> None:
    found = search_or_refuse(corpus, query)
    assert found is None or isinstance(found, list)
    assert corpus.count_items() == len(CORPUS)


@settings(max_examples=150, deadline=None)
@given(query=st.text(max_size=40))
def test_search_never_fails_on_any_text(corpus: Store, query: str) -> None:
    for found in search_or_refuse(corpus, query, limit=5) or []:
        assert found.item.guid in {g for _, g, *_ in CORPUS}


# --- concurrency --------------------------------------------------------------------------


def test_a_reader_is_not_blocked_by_an_open_write(sqlite_store: Store) -> None:
    store = sqlite_store
    store.save_items("asia", [make_item("a", "Before")], state())
    writer = raw(store.path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE items SET title = 'During'")
    started = time.monotonic()
    assert [s.item.title for s in store.search(None)] == ["Before"]
    assert store.count_items() == 1 and store.get_state("asia") is not None
    assert time.monotonic() - started < 1.0
    writer.execute("COMMIT")
    assert [s.item.title for s in store.search(None)] == ["During"]
    writer.close()


def test_a_second_writer_waits_for_the_first(sqlite_store: Store) -> None:
    store = sqlite_store
    other = Store(store.path)
    holder = raw(store.path)
    holder.execute("BEGIN IMMEDIATE")
    # A write by the holder makes any snapshot the waiting writer took before it stale.
    holder.execute("INSERT INTO feeds (feed_id, url) VALUES ('other', 'https://other.example')")
    results: list[StoreResult] = []
    waiting = threading.Thread(
        target=lambda: results.append(other.save_items("asia", [make_item("a", "A")], state()))
    )
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive() and results == []  # waiting, not failed at once
    holder.execute("COMMIT")
    waiting.join(5)
    assert results == [StoreResult(new=1)]
    assert store.count_items() == 1  # the first Store sees the second's write
    other.close()
    holder.close()


def test_a_writer_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    with Store(path, busy_timeout=0.2) as impatient:
        holder = raw(path)
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"locked.*try again"):
            impatient.save_state(state())
        assert time.monotonic() - started >= 0.15
        holder.execute("ROLLBACK")
        holder.close()
        impatient.save_state(state())  # usable again once the lock is gone
        assert impatient.get_state("asia") == state()


def test_one_store_is_safe_to_share_between_threads(store: Store) -> None:
    def poll(feed_id: str) -> None:
        for n in range(20):
            item = make_item(f"{feed_id}-{n}", f"headline {n}", feed_id=feed_id)
            store.save_items(feed_id, [item], state(feed_id))

    threads = [threading.Thread(target=poll, args=(f"f{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_items() == 80
    assert sorted(store.states()) == ["f0", "f1", "f2", "f3"]
