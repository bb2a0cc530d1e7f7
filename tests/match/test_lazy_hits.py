"""A match's hits are worked out when first read, not while matching: the same hits as before,
over the shipped rule pack's own examples, whenever they are read and after a trip through
pickle (the parse workers send matches to the main process)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from monitor.match import compiler
from monitor.match.engine import Matcher
from monitor.match.examples import example_item
from monitor.match.rule import Hit, Match
from monitor.match.ruleset import load_ruleset
from monitor.models import Feed, Item
from tests.match.test_engine import item, rule

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_matching_leaves_the_positions_until_the_hits_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    found_hits = compiler._Compiled.hits

    def counting(self: compiler._Compiled, ctx: compiler._Ctx) -> tuple[Hit, ...]:
        calls.append(self.rule.id)
        return found_hits(self, ctx)

    monkeypatch.setattr(compiler._Compiled, "hits", counting)
    matcher = Matcher.compile([rule('"taiwan strait" AND drill*', "tsd"), rule("pla", "pla")])
    matches = matcher.match(item("PLA drills", "Ships in the Taiwan Strait"))
    assert [m.rule_id for m in matches] == ["tsd", "pla"]
    assert calls == []
    assert matches[0].hits == (
        Hit("drill*", "title", 4, 9),
        Hit('"taiwan strait"', "summary", 13, 26),
    )
    assert matches[0].hits is matches[0].hits  # found once, then kept
    assert calls == ["tsd"]


def test_a_match_is_a_value_whether_its_hits_are_given_or_found() -> None:
    hits = (Hit("pla", "title", 0, 3),)
    given = Match("r", 2.0, hits)
    found = Match("r", 2.0, lambda: hits)
    assert given == found and hash(given) == hash(found)
    assert found != Match("r", 2.0, ()) and found != Match("r", 1.0, hits)
    assert repr(found) == f"Match(rule_id='r', score=2.0, hits={hits!r})"
    assert found.explain() == "r (score 2): pla title@0-3"


def test_pickled_matches_carry_their_hits() -> None:
    (found,) = Matcher.compile([rule("taiwan OR 台湾", "tw")]).match(item("台湾 and Taiwan"))
    copy = pickle.loads(pickle.dumps(found))
    assert copy == found
    assert copy.hits == (Hit("台湾", "title", 0, 2), Hit("taiwan", "title", 7, 13))


def test_hits_read_late_equal_hits_read_at_once_over_the_rule_pack() -> None:
    ruleset = load_ruleset(RULES)
    examples = [e for r in ruleset.rules for e in r.match_examples]
    pending: list[tuple[Match, Item, Feed | None]] = []
    for example in examples:
        it, feed = example_item(example, full=ruleset.tag_all)
        pending += [(m, it, feed) for m in ruleset.matcher.match(it, feed)]
    # Every example has been matched before any hit is read: each match kept its own scan.
    assert len(pending) >= len(examples) > 20
    for late, it, feed in pending:
        # The eager way: the rule alone on a new matcher, its hits read at once.
        alone = Matcher.compile([ruleset.matcher.rules[late.rule_id]])
        (early,) = alone.match(it, feed)
        assert early.hits  # every rule of the pack names terms
        assert late.hits == early.hits, (late.rule_id, it.title)
        assert pickle.loads(pickle.dumps(late)) == early
