"""The rule set scans an item once for rule terms and gazetteer aliases together.

Region tagging from that shared scan must agree with the gazetteer's own tagger, on the demo
week and on the traps the gazetteer is built to avoid.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.demo.demo import load_outlets
from monitor.errors import ParseError
from monitor.ingest.normalize import normalize
from monitor.ingest.parse import parse
from monitor.match.entities import Entities
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.match.tagger import EntityTagger
from monitor.models import Feed

RULES = Path(__file__).resolve().parents[2] / "rules"
TRAPS = [
    ("Georgia beats Jordan in Atlanta", ""),
    ("Tbilisi: Georgia's government protests", ""),
    ("タイミングが大事", "マリンスポーツの季節"),
    ("China Airlines adds flights to Taipei", ""),
    ("South Sudan and Sudan hold talks", "Papua New Guinea observes"),
    ("US and Turkey talk", "turkey dinner in the us"),
    ("北朝鮮がミサイル発射", "북한의 미사일 발사"),
    ("日米首脳会談", "米中の対立"),
]


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset(RULES)


def demo_texts() -> list[tuple[str, str]]:
    texts = []
    for outlet in load_outlets():
        try:
            parsed = parse(
                outlet.id, outlet.body, {"content-type": outlet.content_type}, "http://x/"
            )
        except ParseError:
            continue  # the broken outlet
        feed = Feed(id=outlet.id, url="http://x/")
        items = normalize(feed, parsed, "http://x/", datetime.now(UTC))
        texts += [(item.title, item.summary) for item in items]
    return texts


def test_one_scan_tags_regions_like_the_gazetteer(ruleset: RuleSet) -> None:
    # Without entities (which add the regions they imply), exactly the gazetteer's own tags.
    bare = RuleSet.compile(ruleset.rules, ruleset.gazetteer, EntityTagger(Entities([])))
    texts = demo_texts() + TRAPS
    assert len(texts) > 100
    for title, summary in texts:
        expected = ruleset.gazetteer.tag(title, summary)
        assert bare.tag(title, summary) == expected, title
        assert set(expected) <= set(ruleset.tag(title, summary)), title


def test_the_traps_tag_what_they_should(ruleset: RuleSet) -> None:
    tags = [ruleset.tag(title, summary) for title, summary in TRAPS]
    assert "GE" not in tags[0] and "JO" not in tags[0]
    assert "GE" in tags[1]
    assert "TH" not in tags[2] and "ML" not in tags[2]
    assert {"KP", "KR"} & set(tags[6]) == {"KP"}
    assert {"JP", "US", "CN"} <= set(tags[7])


def test_a_rule_set_survives_the_trip_to_a_worker_process(ruleset: RuleSet) -> None:
    ruleset.tag("Taipei", "")  # builds the lazy caches first, as a running service has
    again = pickle.loads(pickle.dumps(ruleset))
    assert again.tag("北朝鮮がミサイル発射", "") == ruleset.tag("北朝鮮がミサイル発射", "")
    assert [r.id for r in again.rules] == [r.id for r in ruleset.rules]
