"""A feed's next body: the items its state says the store has from the last one are not
tagged, matched and read again (`knownitems`); what is stored is the same as without that
memory, also when it is wrong (the store lacks an item it names), through real worker
processes and a real HTTP server."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.ingest import knownitems
from monitor.ingest.fetch import Fetcher
from monitor.ingest.ingestion import ingest
from monitor.ingest.knownitems import fingerprint, fingerprints, packed
from monitor.ingest.poll import Parser, poll_cycle
from monitor.match.ruleset import RuleSet
from monitor.models import Feed, FeedState, FetchStatus, Item
from monitor.store import Store
from tests.ingest.test_linking_reads import SETTINGS, _reports, _rss, _stories
from tests.support.feedserver import FeedServer, serve

NOW = datetime(2026, 3, 10, tzinfo=UTC)
PATH = "/desk.xml"


def _bodies() -> tuple[bytes, bytes, int]:
    """A first body; the next one, with a new report and an edited one; and how many items
    the next one has that the first has not (new or edited)."""
    reports = [r for r in _reports() if r["lang"] == "en"][:12]
    first = reports[:10]
    edited = {**reports[3], "title": reports[3]["title"] + " (updated)"}
    following = [reports[10], *first[:3], edited, *first[4:]]
    return _rss(first), _rss(following), 2


def _now() -> datetime:
    return NOW


async def _cycle(store: Store, feed: Feed, parser: Parser, ruleset: RuleSet | None) -> None:
    summary = await poll_cycle(
        [feed], store, SETTINGS, force=True, parser=parser, ruleset=ruleset, clock=_now
    )
    assert [o.status for o in summary.outcomes] == [FetchStatus.OK]


def _stored(store: Store) -> dict[str, Any]:
    """What the store holds of each item, by guid: text, tags, matches and story."""
    items = store._rows("SELECT id, guid, title, regions, entities FROM items")
    matches = store._rows("SELECT item_id, rule_id, score, hits FROM matches")
    by_item: dict[int, list[tuple[str, float, str]]] = {}
    for m in matches:
        by_item.setdefault(m["item_id"], []).append((m["rule_id"], m["score"], m["hits"]))
    stories = _stories(store)
    return {
        i["guid"]: (
            i["title"],
            i["regions"],
            i["entities"],
            sorted(by_item.get(i["id"], [])),
            stories.get(i["guid"]),
        )
        for i in items
    }


async def _two_polls(
    server: FeedServer, path: Path, parser: Parser, ruleset: RuleSet | None, *, forget: bool = False
) -> dict[str, Any]:
    """The first body, then the next; with `forget`, the state's memory is emptied between."""
    first, following, _ = _bodies()
    feed = Feed(id="desk", url=server.add(PATH, serve(first)))
    with Store(path) as store:
        await _cycle(store, feed, parser, ruleset)
        state = store.get_state("desk")
        assert state is not None and len(state.known_items) == 8 * first.count(b"<item>")
        if forget:
            store.save_state(dataclasses.replace(state, known_items=b""))
        server.add(PATH, serve(following))
        await _cycle(store, feed, parser, ruleset)
        return _stored(store)


async def test_only_the_new_and_edited_items_are_tagged_again(
    server: FeedServer, shipped_rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    enrich = RuleSet.enrich_folded

    def counted(self: RuleSet, item: Item, feed: Feed | None) -> Any:
        calls.append(item.guid)
        return enrich(self, item, feed)

    monkeypatch.setattr(RuleSet, "enrich_folded", counted)
    first, following, changed = _bodies()
    # Inline parsers (the calls are counted in this process), a new one each poll, as each
    # `monitor poll` starts: the memory is the feed state's.
    kept = await _two_polls(server, tmp_path / "kept.db", Parser(0), shipped_rules)
    assert len(calls) == first.count(b"<item>") + changed
    calls.clear()
    forgot = await _two_polls(server, tmp_path / "forgot.db", Parser(0), shipped_rules, forget=True)
    assert len(calls) == first.count(b"<item>") + following.count(b"<item>")
    assert forgot == kept and len(kept) == first.count(b"<item>") + 1


async def test_workers_leave_the_known_items_bare(
    server: FeedServer, shipped_rules: RuleSet
) -> None:
    first, following, changed = _bodies()
    feed = Feed(id="desk", url=server.add(PATH, serve(following)))
    known = _items(first)
    state = FeedState("desk", feed.url, feed.url, known_items=packed(known))
    parser = Parser(2)
    try:
        async with Fetcher(SETTINGS) as fetcher:
            poll = parser.poll(feed, state, fetcher, NOW, shipped_rules, SETTINGS)
            result, enriched = await poll
    finally:
        parser.close()
    assert result.status is FetchStatus.OK and isinstance(enriched, list)
    bare = [item.guid for item, matches, _, _ in enriched if matches is None]
    assert all(rows is None and read is None for _, m, rows, read in enriched if m is None)
    assert len(bare) == len(enriched) - changed and len(bare) == len(known) - 1
    assert all(rows is not None for _, m, rows, _ in enriched if m is not None)


def _items(body: bytes) -> list[Item]:
    feed = Feed(id="desk", url="https://desk.example.org/feed.xml")
    found = ingest(feed, body, {"content-type": "application/rss+xml"}, feed.url, NOW)
    assert not isinstance(found, str)
    return [item for item, _, _, _ in found]


@pytest.mark.parametrize("with_rules", [True, False])
async def test_items_named_known_that_the_store_lacks_are_tagged_where_they_are_stored(
    server: FeedServer, shipped_rules: RuleSet, tmp_path: Path, with_rules: bool
) -> None:
    """The state says every item is known, but the store lacks them (as after retention):
    they are stored as a first poll stores them (with rules, tagged and matched; without,
    their rows made where they are written)."""
    rules = shipped_rules if with_rules else None
    parser = Parser(2)
    try:
        kept = await _two_polls(server, tmp_path / "a.db", parser, rules)
        with Store(tmp_path / "a.db") as store:
            state = store.get_state("desk")
        assert state is not None and state.known_items
        with Store(tmp_path / "b.db") as store:
            # The same body again, not taken for unchanged: validators forgotten.
            store.save_state(dataclasses.replace(state, etag=None, body_hash=None))
            await _cycle(store, Feed(id="desk", url=server.url(PATH)), parser, rules)
            wrong = _stored(store)
        with Store(tmp_path / "c.db") as store:
            await _cycle(store, Feed(id="desk", url=server.url(PATH)), parser, rules)
            right = _stored(store)
    finally:
        parser.close()
    assert wrong == right
    assert {g: v[:4] for g, v in right.items()} == {g: v[:4] for g, v in kept.items() if g in right}
    assert any(matches for _, _, _, matches, _ in right.values()) is with_rules


def test_the_state_keeps_the_fingerprints_of_a_bounded_body(store: Store) -> None:
    """On both backends; an edit changes an item's fingerprint; a huge body is cut."""
    items = _items(_bodies()[0])
    state = FeedState("desk", "https://desk.example.org/feed.xml", known_items=packed(items))
    store.save_state(state)
    assert store.get_state("desk") == state
    assert fingerprints(state.known_items) == {fingerprint(i) for i in items}
    edited = dataclasses.replace(items[0], content_hash="another")
    assert fingerprint(edited) not in fingerprints(state.known_items)
    many = packed(items * (knownitems.ITEMS_KEPT // len(items) + 2))
    assert len(many) == 8 * knownitems.ITEMS_KEPT
