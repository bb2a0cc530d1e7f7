"""What story linking reads from a text is read in the parse workers, beside the matcher, and
kept beside each pending item in the store until it is linked (`Store.pending_reads`): the
stories must be exactly those the linker makes when it reads every text itself.

The feeds are the stories evaluation set (tests/story/eval: 149 reports of look-alike events
in English, Japanese, Chinese and Korean, with figures, codes and named operations), served
by a real HTTP server on loopback and polled with real worker processes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from monitor.ingest import linking
from monitor.ingest.ingestion import ingest
from monitor.ingest.poll import Parser, poll_cycle
from monitor.match.ruleset import RuleSet
from monitor.match.textnorm import fold
from monitor.models import Feed, FeedState, FetchStatus, Settings
from monitor.store import Store
from monitor.store.saving import FeedSave, prepare
from monitor.story import profile
from monitor.story.profile import packed_read, read_text, unpacked_read
from tests.support.feedserver import FeedServer, serve

EVAL = Path(__file__).parents[1] / "story" / "eval" / "reports.jsonl"
SETTINGS = Settings(connect_timeout=5, read_timeout=5, total_timeout=10)
NOW = datetime(2026, 3, 10, tzinfo=UTC)  # after every report: all of them are stored


def _reports() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line]


def _rss(reports: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<item><guid>{escape(r['id'])}</guid><title>{escape(r['title'])}</title>"
        f"<link>{escape(r['link'])}</link><description>{escape(r['summary'])}</description>"
        f"<pubDate>{format_datetime(datetime.fromisoformat(r['published']))}</pubDate></item>"
        for r in reports
    )
    lang = reports[0]["lang"]
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://example.org/</link><language>{lang}</language>{entries}</channel></rss>"
    ).encode()


def _feeds(server: FeedServer) -> list[Feed]:
    by_outlet: dict[str, list[dict[str, Any]]] = {}
    for report in _reports():
        by_outlet.setdefault(f"{report['outlet']}-{report['lang']}", []).append(report)
    return [
        Feed(id=f"outlet-{i}", url=server.add(f"/outlet-{i}.xml", serve(_rss(reports))))
        for i, (_, reports) in enumerate(sorted(by_outlet.items()))
    ]


def _stories(store: Store) -> dict[str, tuple[tuple[str, ...], float, str]]:
    """Each item's fellow reports (by guid), score and why: comparable across stores, whose
    item and story ids depend on which fetch finished first."""
    rows = store._rows(
        "SELECT i.guid, l.story_id, l.score, l.why FROM story_links AS l"
        " JOIN items AS i ON i.id = l.item_id"
    )
    members: dict[int, list[str]] = {}
    for row in rows:
        members.setdefault(row["story_id"], []).append(row["guid"])
    return {
        row["guid"]: (tuple(sorted(members[row["story_id"]])), row["score"], row["why"])
        for row in rows
    }


async def _poll(
    path: Path, feeds: list[Feed], ruleset: RuleSet, link: bool
) -> dict[str, tuple[tuple[str, ...], float, str]]:
    parser = Parser(2, link=link)
    try:
        with Store(path) as store:
            summary = await poll_cycle(
                feeds, store, SETTINGS, parser=parser, ruleset=ruleset, clock=_now
            )
            assert {o.status for o in summary.outcomes} == {FetchStatus.OK}
            return _stories(store)
    finally:
        parser.close()


def _now() -> datetime:
    return NOW


async def test_reads_from_the_workers_make_the_same_stories(
    server: FeedServer, shipped_rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_here: list[int] = []
    reading = profile._read  # what linking reads of a text it was not handed

    def counted(folded: str, words: bytes | None) -> tuple[list[str], frozenset[str], str | None]:
        read_here.append(1)
        return reading(folded, words)

    monkeypatch.setattr(profile, "_read", counted)  # this process's reads only
    feeds = _feeds(server)
    from_workers = await _poll(tmp_path / "a.db", feeds, shipped_rules, link=True)
    assert read_here == []  # every text was read in a worker, none again here
    read_here_linking = await _poll(tmp_path / "b.db", feeds, shipped_rules, link=False)
    assert len(read_here) == len(_reports())  # the workers read nothing: all read here
    assert len(from_workers) == len(_reports())
    assert from_workers == read_here_linking
    assert len({members for members, _, _ in from_workers.values()}) < len(from_workers) / 2


def test_a_worker_reads_the_text_as_linking_would(shipped_rules: RuleSet) -> None:
    """The scan folds title and summary apart; linking folded them joined: the same read, for
    every report of the evaluation set (four languages, Traditional Chinese among them). The
    rows for the store are made from the scan's folding too: the same as folding again."""
    body = b"".join([_rss(_reports())])
    feed = Feed(id="eval", url="https://example.org/eval.xml")
    for rules in (shipped_rules, None):
        enriched = ingest(feed, body, {}, feed.url, NOW, rules)
        assert not isinstance(enriched, str) and len(enriched) == len(_reports())
        for item, _, rows, read in enriched:
            assert read == packed_read(read_text(fold(f"{item.title}\n{item.summary}")))
            assert rows == prepare(item)  # the full-text columns from the scan's folding too
    unread = ingest(feed, body, {}, feed.url, NOW, shipped_rules, link=False)
    assert not isinstance(unread, str) and {read for *_, read in unread} == {None}


def _saved(store: Store, reports: list[dict[str, Any]], reads: bool = True) -> list[str | None]:
    """Ingest and store one feed of `reports` (not linked); the packed reads it carried."""
    feed = Feed(id="eval", url="https://example.org/eval.xml")
    enriched = ingest(feed, _rss(reports), {}, feed.url, NOW)
    assert not isinstance(enriched, str)
    items = [item for item, *_ in enriched]
    packed = [read for *_, read in enriched]
    state = FeedState(feed.id, feed.url)
    store.save_batch([FeedSave(feed.id, items, state, reads=packed if reads else None)])
    return packed


def test_reads_wait_in_the_store_beside_their_pending_items(store: Store) -> None:
    """On both backends: each new item's read is kept on the linking queue, and taken off it
    with the item once linked."""
    packed = _saved(store, _reports()[:6])
    pending = store.pending_stories()
    assert [s.item.guid for s in pending] == [r["id"] for r in _reports()[:6]]
    reads = store.pending_reads([s.id for s in pending])
    assert [reads[s.id] for s in pending] == packed
    for s in pending:
        assert unpacked_read(reads[s.id]) == read_text(fold(f"{s.item.title}\n{s.item.summary}"))
    assert linking.link_pending(store) == 6
    assert store.pending_reads([s.id for s in pending]) == {}


def test_another_process_links_with_the_reads_the_workers_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored by one `Store`, linked by another (as another instance would): no text is read
    again, and the stories are those made by reading every text, also when a read is damaged
    (then that one text is read again)."""
    read_here: list[int] = []
    reading = profile._read

    def counted(folded: str, words: bytes | None) -> tuple[list[str], frozenset[str], str | None]:
        read_here.append(1)
        return reading(folded, words)

    stories = {}
    for name, reads in (("reads", True), ("unread", False), ("damaged", True)):
        path = tmp_path / f"{name}.db"
        with Store(path) as store:
            _saved(store, _reports(), reads)
            if name == "damaged":
                first = store.pending_stories(1)[0].id
                with store._write() as conn:
                    conn.execute("UPDATE story_pending SET read = '[1' WHERE item_id = ?", (first,))
        monkeypatch.setattr(profile, "_read", counted)
        read_here.clear()
        with Store(path) as other:
            assert linking.link_pending(other) == len(_reports())
            stories[name] = (_stories(other), len(read_here))
        monkeypatch.setattr(profile, "_read", reading)
    assert stories["reads"][1] == 0
    assert stories["unread"][1] == len(_reports())
    assert stories["damaged"][1] == 1
    assert stories["reads"][0] == stories["unread"][0] == stories["damaged"][0]


@pytest.mark.parametrize(
    "packed",
    ["", "[1", "{}", "[1, 2, 3]", '[["a"], "b"]', '[["a"], "b", 3]', '["a", "b", null]', "7"],
)
def test_a_damaged_read_is_none(packed: str) -> None:
    assert unpacked_read(packed) is None
    good = (("number:650km", "op:strait-thunder"), "a b", "again")
    assert unpacked_read(packed_read(good)) == good
    assert unpacked_read(None) is None
