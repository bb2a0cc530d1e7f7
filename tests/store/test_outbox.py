"""The outbox's tables on both backends (`db_target`): the statements whose SQLite spelling
PostgreSQL refuses or reads otherwise (an upsert replacing a row, a column beside min() in a
GROUP BY, a column named on both sides of an upsert, a unique key's refusal inside a
transaction, bytes), each checked for the same result on a SQLite file and a PostgreSQL
database. The digest tests (tests/digest/) run the same paths end to end on both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.match.rule import Hit, Match
from monitor.models import Rendered, StoreResult
from monitor.store import Store
from monitor.store.details import item_detail, match_totals
from monitor.store.outbox import Claims, Outbox
from monitor.store.routes import RouteHealth
from monitor.store.storysent import SentStory, StorySent
from tests.store.test_store import T0, make_item, state

BODY = bytes(range(256)) * 4  # every byte value, NUL included: a BYTEA column, not text


@pytest.fixture
def store(db_target: Path | str) -> Iterator[Store]:
    with Store(db_target) as s:
        yield s


def stored(store: Store, *guids: str) -> list[int]:
    """Store items of these guids with a match of rule `r`; their ids, in order."""
    match = Match("r", 1.5, (Hit("drills", "title", 0, 6),))
    items = [make_item(g, f"drills {g}") for g in guids]
    store.save_items("asia", items, state(), lambda i: (i, [match]))
    ids = {s.item.guid: s.id for s in store.get_items(range(1, 100))}
    return [ids[g] for g in guids]


def rendered(digest_id: str, body: bytes = BODY) -> Rendered:
    return Rendered(digest_id, "email", body, f"subject {digest_id}", "message/rfc822")


def test_a_frozen_digest_keeps_its_bytes_and_claims_each_item_once(store: Store) -> None:
    a, b = stored(store, "a", "b")
    outbox = Outbox(store)
    assert outbox.freeze(rendered("d1"), "desk", "me", Claims(listed=(a,), left_out=(b,)), T0)
    frozen = outbox.get("d1")
    assert frozen is not None and frozen.body == BODY and frozen.created == T0
    assert (frozen.shown, frozen.truncated, frozen.status) == (1, 1, "pending")
    # `a` is the route's already: the second digest is refused whole, and nothing of it kept.
    assert not outbox.freeze(rendered("d2"), "desk", "me", Claims(listed=(b, a)), T0)
    assert outbox.get("d2") is None and outbox.left_out("d1") == [b]
    assert [m.item_id for m in outbox.pending("desk", T0 - timedelta(days=1))] == [b]
    assert outbox.freeze(rendered("d3"), "desk", "me", Claims(listed=(b,)), T0)  # usable again


def test_sent_to_names_the_first_digest_that_carried_each_item(store: Store) -> None:
    a, b = stored(store, "a", "b")
    outbox = Outbox(store)
    later = T0 + timedelta(hours=2)
    assert outbox.freeze(rendered("late"), "desk", "me", Claims(listed=(a, b)), later)
    assert outbox.freeze(rendered("early"), "night", "me", Claims(listed=(a,)), T0)
    assert outbox.freeze(rendered("other"), "ops", "you", Claims(listed=(b,)), T0)
    sent = outbox.sent_to("me", [a, b, 999])
    assert {i: (r.digest_id, r.sent) for i, r in sent.items()} == {
        a: ("early", T0),
        b: ("late", later),
    }
    outbox.record_sent("early", T0 + timedelta(hours=3))  # delivered after `late` was made
    assert outbox.sent_to("me", [a])[a].digest_id == "late"


def test_a_receiver_disabled_twice_keeps_the_last_reason(store: Store) -> None:
    outbox = Outbox(store)
    outbox.disable_receiver("me", "410 Gone", T0)
    outbox.disable_receiver("me", "401 Unauthorized", T0 + timedelta(hours=1))
    assert outbox.disabled() == {"me": "401 Unauthorized"}
    assert outbox.enable_receiver("me") and not outbox.enable_receiver("me")
    assert outbox.disabled() == {}


def test_leases_failures_and_requeue(store: Store) -> None:
    (a,) = stored(store, "a")
    outbox = Outbox(store)
    assert outbox.freeze(rendered("d1"), "desk", "me", Claims(listed=(a,)), T0)
    assert [d.id for d in outbox.due(T0)] == ["d1"]
    assert outbox.lease("d1", T0, T0 + timedelta(minutes=5))
    assert not outbox.lease("d1", T0, T0 + timedelta(minutes=5))  # another process has it
    outbox.record_failure("d1", "550 no", None)
    assert outbox.counts() == {"dead": 1} and outbox.due(T0 + timedelta(days=1)) == []
    assert outbox.requeue("d1", T0) and [d.attempts for d in outbox.recent(["pending"])] == [1]


def test_a_route_failing_twice_counts_both_from_the_first(store: Store) -> None:
    health = RouteHealth(store)
    health.failed("desk", "template broke", T0, T0 + timedelta(minutes=1))
    health.failed("desk", "still broken", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    [trouble] = health.troubled()
    assert (trouble.failures, trouble.since, trouble.last_error) == (2, T0, "still broken")
    assert trouble.retry_at == T0 + timedelta(minutes=3)
    health.recovered("desk")
    assert health.troubled() == []


def test_a_story_sent_again_moves_its_record_forward(store: Store) -> None:
    a, b = stored(store, "a", "b")
    outbox, sent = Outbox(store), StorySent(store)
    first = SentStory(7, ("asia",), ("en",), "high")
    grown = SentStory(7, ("asia", "korea"), ("en", "ko"), "critical")
    assert outbox.freeze(rendered("d1"), "desk", "me", Claims((a,), stories=(first,)), T0)
    later = T0 + timedelta(hours=1)
    assert outbox.freeze(rendered("d2"), "desk", "me", Claims((b,), stories=(grown,)), later)
    [record] = sent.sent("desk", [7, 8]).values()
    assert (record.outlets, record.languages, record.severity) == (
        grown.outlets,
        grown.languages,
        grown.severity,
    )
    assert (record.digest_id, record.sent) == ("d2", later)
    assert sent.delivered("desk", [a, b]) == {a: "d1", b: "d2"}
    sent.cover("desk", [(a, "d2")])  # claimed already: stays as it is
    assert sent.delivered("desk", [a]) == {a: "d1"}


def test_an_item_told_whole_and_the_history_totals(store: Store) -> None:
    a, b = stored(store, "a", "b")
    with store._write() as conn:
        conn.execute("UPDATE matches SET history = 1 WHERE item_id = ?", (b,))
    assert match_totals(store) == (2, 1)
    assert Outbox(store).freeze(rendered("d1"), "desk", "me", Claims(listed=(a,)), T0)
    detail = item_detail(store, a)
    assert detail is not None and detail.stored.item.guid == "a"
    [match] = detail.matches
    assert (match.rule_id, match.score, match.history) == ("r", 1.5, False)
    assert match.hits == (Hit("drills", "title", 0, 6),)
    assert [(d.digest_id, d.route_id, d.status) for d in detail.digests] == [
        ("d1", "desk", "pending")
    ]
    assert item_detail(store, 999) is None


def test_an_edited_item_s_match_keeps_its_history_flag_in_the_counts(store: Store) -> None:
    match = Match("r", 1.0, (Hit("drills", "title", 0, 6),))
    other = Match("s", 1.0, (Hit("drills", "title", 0, 6),))
    old = make_item("a", "drills a", published=T0 - timedelta(days=30))
    before = T0 - timedelta(days=1)
    assert store.save_items("asia", [old], state(), lambda i: (i, [match]), before) == (
        StoreResult(new=1, matches=1, history=1)
    )
    edited = make_item("a", "drills a, corrected", published=T0)  # no longer old news
    result = store.save_items("asia", [edited], state(), lambda i: (i, [match, other]), before)
    # `r` stays history (a match never changes its flag), `s` is new and due.
    assert result == StoreResult(updated=1, matches=2, history=1)
    assert store.match_counts() == {"r": 1, "s": 1}
