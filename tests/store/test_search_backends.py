"""The same searches on both backends give the same items: FTS5 on a SQLite file, tsqueries
over the store's own tsvectors on PostgreSQL (`store.pgtext`).

One corpus in English, Japanese, Chinese and Korean (sentences written for this test) is
stored in a SQLite file and in a PostgreSQL database; every query of `QUERIES` must find the
same items, in the same order, on both. The queries cover every operator, both fields, NEAR
distances in both orders, prefixes, Hangul particles, CJK substrings, the scopes, and
characters that are FTS5 or tsquery syntax.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from monitor.match.textnorm import search_text
from monitor.store import Store
from monitor.store.ftsquery import SearchQueryError
from monitor.store.pgtext import GAP, _quoted, tokens, tsvector
from tests.store.test_store import T0, make_item, state

# (feed, guid, lang, regions, title, summary)
CORPUS = [
    ("asia", "en-strait", "en", ("TW", "CN"),
     "Taiwan Strait crossing by navy ships",
     "Ships from the fleet crossed the Taiwan Strait at dawn, officials said."),
    ("asia", "en-drills", "en", ("CN", "TW"),
     "PLA holds live-fire drills near Taiwan",
     "Ships circled the island; drilling went on for three days."),
    ("asia", "en-calm", "en", ("TW",),
     "Taiwan says the strait is calm",
     "No ships were seen. Taiwan's coast guard kept watch."),
    ("asia", "en-cafe", "en", (),
     "Café owners in São Paulo and Zürich raise prices",
     "Coffee costs 50% more; the AT&T strike, C++ jobs and O'Brien's shop: it's a mess."),
    ("asia", "en-syntax", "en", (),
     'Symbols: a|b, x:y, wow! (paren) back\\slash star* and "quotes"',
     "Rock 'n' roll & jazz; don't stop; 1,000 ships; 2025-12-01."),
    ("asia", "en-edge", "en", ("TW",),
     "Blockade talk ends title with taiwan",
     "ships start the summary here, far from the title."),
    ("asia", "en-repeat", "en", ("TW",),
     "taiwan taiwan strait strait",
     "The strait and Taiwan, Taiwan and the strait."),
    ("asia", "en-fullwidth", "en", (),
     "ＴＡＩＷＡＮ ＮＥＷＳ in full width 🔥",
     "Emoji 🇹🇼 next to words; taiwan🔥 stuck to fire."),
    ("asia", "ja-missile", "ja", ("JP", "KP"),
     "北朝鮮がミサイルを発射",
     "日本海に落下したとみられる。防衛省が発表した。"),
    ("asia", "ja-strait", "ja", ("CN", "TW"),
     "台湾海峡で緊張が高まる",
     "中国軍の艦船が台湾周辺を航行した。"),
    ("asia", "ja-kana", "ja", ("JP",),
     "サイバー攻撃で空港のシステムが停止",
     "ミサイルではなくサイバー攻撃だった。"),
    ("asia", "zh-mofa", "zh-cn", ("CN", "TW"),
     "外交部：臺灣問題是中國內政",
     "外交部发言人在例行记者会上说，台湾海峡局势总体稳定。"),
    ("asia", "zh-tw", "zh-tw", ("TW",),
     "國防部：共軍機艦持續在臺海周邊活動",
     "國軍嚴密監控，台灣海峽情勢。"),
    ("asia", "zh-econ", "zh-cn", ("CN",),
     "人民币汇率保持稳定",
     "央行表示，经济运行总体平稳，台湾企业投资增加。"),
    ("korea", "ko-missile", "ko", ("KP", "KR"),
     "북한의 미사일 발사에 한국군 경계 강화",
     "합동참모본부는 북한이 동해상으로 탄도미사일을 쐈다고 밝혔다."),
    ("korea", "ko-un", "ko", ("KP",),
     "북한UN 대표부 성명 발표",
     "북한은 UN 안보리 결의를 비난했다. 미사일 언급 없음."),
    ("korea", "ko-taiwan", "ko", ("TW", "CN"),
     "대만 해협 긴장 고조",
     "대만과 중국 사이 해협에서 군사 훈련이 이어졌다."),
    ("korea", "en-vote", "en", ("UN",),
     "UN vote on sanctions",
     "Members voted on North Korea sanctions; Korea's envoy spoke."),
    ("korea", "en-korea-ships", "en", ("KR",),
     "Korea tracks ships near the strait",
     "Taiwan was not named. Ships moved north."),
]  # fmt: skip
TAGS = {"Wire": ["korea"], "asia": ["asia"]}

QUERIES = [
    # words, phrases, prefixes, the boolean operators
    "taiwan",
    "ships",
    '"taiwan strait"',
    '"strait taiwan"',
    "drill*",
    "tai*",
    "taiwan OR 北朝鮮",
    "taiwan AND ships",
    "taiwan ships strait",
    "taiwan NOT calm",
    "taiwan -ships",
    "(taiwan OR 台湾) -calm",
    "taiwan AND (calm OR drills)",
    "ships NOT (taiwan OR korea)",
    # fields, nested
    "title:taiwan",
    "summary:taiwan",
    "title:(taiwan OR korea)",
    'title:"taiwan strait"',
    "title:(summary:taiwan)",
    "title:ships summary:ships",
    "summary:(ships -taiwan)",
    # NEAR, both orders, groups, phrases, fields, the edge of title and summary
    "taiwan NEAR/1 strait",
    "strait NEAR/1 taiwan",
    "taiwan NEAR/2 strait",
    "ships NEAR/3 taiwan",
    "taiwan NEAR/3 ships",
    "taiwan NEAR/1 taiwan",
    '"taiwan strait" NEAR/2 ships',
    'strait NEAR/1 "taiwan strait"',
    '"taiwan taiwan" NEAR/1 "taiwan strait"',
    "(taiwan OR pla) NEAR/4 drills",
    "(taiwan OR pla) NEAR/2 drills",
    "title:taiwan NEAR/3 summary:ships",
    "title:taiwan NEAR/3 ships",
    "summary:(ships NEAR/8 taiwan)",
    "taiwan NEAR/2 ships",
    "taiwan NEAR/1000 calm",
    "(taiwan OR pla) NEAR/1000 (drills OR ships)",  # just within PostgreSQL's bound
    "ships NEAR/2 _",
    "(北朝鮮 OR 북한) NEAR/3 (ミサイル OR 미사일)",
    "台湾 NEAR/1 海峡",
    # Korean: particles follow the noun, so a term is a prefix
    "북한",
    "북한의",
    "title:북한",
    '"북한 미사일"',
    "미사일",
    "해협",
    # Chinese and Japanese: substrings, Traditional folded to Simplified
    "台湾",
    "臺灣",
    "海峡",
    '"台湾海峡"',
    "外交部 台湾",
    "ミサイル",
    "サイル",
    "北朝鮮 ミサイル",
    "サイバー -ミサイル",
    # scopes
    "region:KP",
    "region:kp 북한",
    "region:TW -台湾",
    "NOT taiwan region:TW",
    "region:KP OR taiwan",
    "feed:korea",
    "feed:korea -북한",
    "lang:ja",
    "lang:zh",
    "lang:zh 台湾",
    "tag:wire",
    "tag:wire ships",
    "tag:nowhere",
    "tag:asia AND (missile OR ミサイル)",
    # folding, and what is FTS5 or tsquery syntax
    "cafe",
    "café",
    "zurich",
    '"sao paulo"',
    "sao NEAR/1 paulo",
    "o'brien",
    '"it\'s"',
    "taiwan's",
    '"at&t"',
    '"a|b"',
    '"x:y"',
    '"wow!"',
    '"(paren"',
    '"back\\slash"',
    '"star*"',
    '"c++"',
    '"50%"',
    "\"rock 'n' roll\"",
    "don't",
    "1,000",
    "2025",
    "ｔａｉｗａｎ",
    "taiwan🔥",
    "_",
    "taiwan OR _",
    "taiwan _",
]


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, pg_server: Callable[[str], str]
) -> Iterator[tuple[Store, Store]]:
    sqlite_store = Store(tmp_path_factory.mktemp("both") / "monitor.db")
    pg_store = Store(pg_server("search_backends"))
    for feed_id in ("asia", "korea"):
        items = [
            make_item(g, t, s, feed_id=f, lang=lang, regions=regions,
                      published=T0 + timedelta(hours=n))
            for n, (f, g, lang, regions, t, s) in enumerate(CORPUS)
            if f == feed_id
        ]  # fmt: skip
        for store in (sqlite_store, pg_store):
            store.save_items(feed_id, items, state(feed_id))
    yield sqlite_store, pg_store
    sqlite_store.close()
    pg_store.close()


def found(store: Store, query: str) -> list[tuple[int, str]]:
    return [(s.id, s.item.guid) for s in store.search(query, limit=100, tag_feeds=TAGS)]


@pytest.mark.parametrize("query", QUERIES)
def test_both_backends_find_the_same_items(stores: tuple[Store, Store], query: str) -> None:
    sqlite_store, pg_store = stores
    assert found(pg_store, query) == found(sqlite_store, query)


def test_the_queries_find_something_to_compare(stores: tuple[Store, Store]) -> None:
    """Equal answers prove little if they are all empty: most queries find items, and the
    ones meant to find none are few."""
    empty = [q for q in QUERIES if not found(stores[0], q)]
    assert len(QUERIES) >= 40
    assert len(empty) <= len(QUERIES) // 5, empty


@pytest.mark.parametrize(
    "query", ["%", '"🔥"', "(taiwan", "taiwan OR", "(taiwan NEAR/2 ships) NEAR/3 x"]
)
def test_both_backends_refuse_the_same_queries(stores: tuple[Store, Store], query: str) -> None:
    messages = []
    for store in stores:
        with pytest.raises(SearchQueryError) as raised:
            store.search(query)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]


def test_a_near_too_wide_for_postgresql_is_refused_there_in_one_line(
    stores: tuple[Store, Store],
) -> None:
    """Five pairs at NEAR/1000 spell out more placements than PostgreSQL reads in good time:
    SQLite searches it, PostgreSQL says so instead of working for seconds."""
    query = "(taiwan OR pla OR korea OR un OR ships) NEAR/1000 (drills OR calm)"
    sqlite_store, pg_store = stores
    assert found(sqlite_store, query)
    with pytest.raises(SearchQueryError) as raised:
        pg_store.search(query)
    message = str(raised.value)
    assert "cannot be searched on PostgreSQL" in message and "\n" not in message
    assert "monitor rules test --since" in (raised.value.hint or "")


def test_the_tokens_are_those_fts5_makes() -> None:
    """`pgtext.tokens` against SQLite's own tokenizer, on the corpus and on text made to be
    awkward: diacritics alone and combined, marks that only continue a word, emoji, symbols,
    full-width letters, the four scripts."""
    texts = [search_text(t) for _, _, _, _, title, summary in CORPUS for t in (title, summary)]
    texts += [
        "e\u0301cole a\u0308\u0301b \u0301x naïve façade ǅemal ﬁsh Ⅻ ½ ²",
        "x_y a-b a.b a'b a’b #tag @who ~ ^ ` ¿ ¡ « » — – ‘ ’",
        "🇹🇼🔥😀 ☃ ♥ ♪ © ® ™ € ¥ $ 𝐀𝐁 𠀀 ㊙ ① ⓐ",
        "ΑΘΗΝΑ Ἀθῆναι Москва ЁЖ ٱلْعَرَبِيَّة हिन्दी ไทย",
    ]
    assert [tokens(text) for text in texts] == fts5_tokens(texts)


def test_the_shipped_table_agrees_with_this_sqlite() -> None:
    """Characters from every plane, between two letters and alone, tokenized by the SQLite in
    use and by `pgtext.tokens` (the table is made by scripts/gen_fts5_unicode61.py)."""
    rnd = random.Random(3)
    points = [c for c in rnd.sample(range(0x80, 0x110000), 4000) if not 0xD800 <= c < 0xE000]
    texts = [f"a{chr(c)}b {chr(c)}" for c in points]
    assert [tokens(text) for text in texts] == fts5_tokens(texts)


def fts5_tokens(texts: list[str]) -> list[list[str]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize='unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
    db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", list(enumerate(texts, 1)))
    made: dict[int, list[str]] = {}
    for doc, term in db.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        made.setdefault(doc, []).append(term)
    return [made.get(n, []) for n in range(1, len(texts) + 1)]


def test_a_tsvector_literal_keeps_the_fields_apart(
    stores: tuple[Store, Store],
) -> None:
    """What PostgreSQL reads back from the literal: every token as made, title words weighted
    A from position 1, summary words B after the gap."""
    _, pg_store = stores
    literal = tsvector("ab x", "x 'q' c\\d")
    (row,) = pg_store._rows(
        "SELECT array_agg(lexeme ORDER BY lexeme) AS words,"
        " array_agg(array_to_string(positions, ',') || ':' || array_to_string(weights, ',')"
        " ORDER BY lexeme) AS places FROM unnest(?::tsvector)",
        (literal,),
    )
    assert row["words"] == ["ab", "c", "d", "q", "x"]
    gap = 2 + GAP  # after the title's two words and the gap
    assert row["places"] == [
        "1:A",
        f"{gap + 3}:B",
        f"{gap + 4}:B",
        f"{gap + 2}:B",
        f"2,{gap + 1}:A,B",
    ]


@pytest.mark.parametrize("lexeme", ["it's", "back\\slash", "''", "a b", "x:*A & !y"])
def test_a_quoted_lexeme_reads_back_as_itself(stores: tuple[Store, Store], lexeme: str) -> None:
    """Tokens never hold quotes or backslashes (unicode61 splits there), but the quoting is
    right anyway: in a tsvector and in a tsquery, any lexeme is one lexeme, never syntax."""
    _, pg_store = stores
    (row,) = pg_store._rows(
        "SELECT (SELECT array_agg(lexeme) FROM unnest(?::tsvector)) AS words,"
        " querytree(?::tsquery) AS query",
        (f"{_quoted(lexeme)}:1A", _quoted(lexeme)),
    )
    assert row["words"] == [lexeme]
    assert row["query"] == _quoted(lexeme)


def test_postgresql_limits_lose_no_item_and_no_word(pg_url: str) -> None:
    """A token longer than a lexeme may be (2046 bytes) is cut, on both sides, and still found;
    a summary past the last position (16383) is stored whole, its late words found (only
    phrases among them lose their order); a word repeated past 256 times stays found (its
    later positions are dropped, so a phrase or NEAR with them is not)."""
    long_word = "x" * 3000
    far = " ".join(f"w{n}" for n in range(20_000)) + " lastword"
    items = [
        make_item("long", f"a {long_word} b", "short"),
        make_item("far", "far away", far, published=T0 + timedelta(hours=1)),
        make_item("many", "many", "again " * 400 + "finally", published=T0 + timedelta(hours=2)),
    ]
    with Store(pg_url) as store:
        store.save_items("asia", items, state("asia"))
        assert [s.item.guid for s in store.search(long_word)] == ["long"]
        assert [s.item.guid for s in store.search("lastword")] == ["far"]
        assert [s.item.guid for s in store.search("again finally")] == ["many"]
        assert store.count_items() == 3


# --- random phrases, prefixes, fields and NEARs over a small vocabulary --------------------

VOCABULARY = ["a", "b", "c", "ab", "abc", "d", "북한", "북한의", "台", "湾"]


@pytest.fixture(scope="module")
def crowded(
    tmp_path_factory: pytest.TempPathFactory, pg_server: Callable[[str], str]
) -> Iterator[tuple[Store, Store]]:
    """200 items of a few words each, so that words meet at every distance and order."""
    rnd = random.Random(11)
    items = [
        make_item(
            f"r{n}",
            " ".join(rnd.choices(VOCABULARY, k=rnd.randint(0, 6))),
            " ".join(rnd.choices(VOCABULARY, k=rnd.randint(0, 12))),
            published=T0 + timedelta(minutes=n),
        )
        for n in range(200)
    ]
    pair = (Store(tmp_path_factory.mktemp("crowded") / "m.db"), Store(pg_server("crowded")))
    for store in pair:
        store.save_items("asia", items, state("asia"))
    yield pair
    for store in pair:
        store.close()


def random_query(rnd: random.Random) -> str:
    def term() -> str:
        word, other = rnd.choice(VOCABULARY), rnd.choice(VOCABULARY)
        return rnd.choice(
            [word, word, f'"{word} {other}"', f'"{other} {word} {other}"', f"{word[0]}*",
             f"title:{word}", f"summary:{word}"]
        )  # fmt: skip

    def side() -> str:
        return f"({term()} OR {term()})" if rnd.random() < 0.3 else term()

    near = f"{side()} NEAR/{rnd.randint(1, 4)} {side()}"
    return rnd.choice(
        [
            near,
            near,
            f"{term()} {term()} NOT {term()}",
            f"{rnd.choice(['title:', 'summary:'])}({near})",
        ]
    )


def test_random_phrases_prefixes_fields_and_nears_agree(crowded: tuple[Store, Store]) -> None:
    rnd = random.Random(5)
    queries = [random_query(rnd) for _ in range(150)]
    differ = [q for q in queries if found(crowded[0], q) != found(crowded[1], q)]
    assert differ == []
    assert sum(bool(found(crowded[0], q)) for q in queries) > 100  # most find something
