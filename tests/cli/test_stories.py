"""`monitor stories` (list, show, split, merge), `items search --story`, and `"story"` in the
JSON of `items search`, `items show` and `rules test --since`: `monitor poll` (and once
`monitor run` as a subprocess) against a real feed server, into a real SQLite file, with the
default Korea rules.

The feeds tell one event (a North Korean launch) in English from two outlets with
near-identical headlines and in Japanese, plus a look-alike (another launch, of other
missiles, elsewhere, hours later). Only the overwhelming case (same event, same language,
near-identical titles) and the look-alike's staying apart depend on the real linker; the
corrections are tested whatever it decided.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.store import Store
from tests.support.feedserver import FeedServer, serve
from tests.support.readme import readme_block, run_block
from tests.support.service import RunningService

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)

# guid -> (feed, minutes before now, title, summary)
REPORTS = {
    "wire-1": (
        "wire",
        50,
        "North Korea fires ballistic missile into the Sea of Japan",
        "Japan's defence ministry said the missile was launched from near Pyongyang at 7:10 am"
        " and fell outside Japan's exclusive economic zone.",
    ),
    "courier-1": (
        "courier",
        40,
        "North Korea fires ballistic missile into Sea of Japan, Tokyo says",
        "The missile, launched from near Pyongyang at 7:10 am, fell outside Japan's exclusive"
        " economic zone, Japan's defence ministry said.",
    ),
    "nhk-1": (
        "tokyo",
        45,
        "北朝鮮が弾道ミサイルを発射、日本海に落下",
        "防衛省によると、北朝鮮は午前7時10分ごろ平壌付近から弾道ミサイル1発を発射し、"
        "日本の排他的経済水域の外に落下した。",
    ),
    "courier-2": (  # the look-alike: another launch, other missiles, another sea
        "courier",
        5,
        "North Korea fires several cruise missiles off its west coast",
        "South Korea's Joint Chiefs of Staff said the cruise missiles were fired near Nampo"
        " into the Yellow Sea in the afternoon.",
    ),
}
LANG = {"wire": "en", "courier": "en", "tokyo": "ja"}


def rss(feed: str, guids: list[str]) -> bytes:
    items = ""
    for guid in guids:
        _, minutes, title, summary = REPORTS[guid]
        when = format_datetime(NOW - timedelta(minutes=minutes), usegmt=True)
        items += (
            f"<item><guid>{guid}</guid><title>{escape(title)}</title>"
            f"<link>https://{feed}.example.org/{guid}</link>"
            f"<description>{escape(summary)}</description><pubDate>{when}</pubDate></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{feed}'
        f"</title><language>{LANG[feed]}</language>{items}</channel></rss>"
    ).encode()


@dataclass
class Setup:
    server: FeedServer
    rules: Path
    db: Path

    def serve(self, feeds: dict[str, list[str]]) -> None:
        lines = ["feeds:"]
        for feed, guids in feeds.items():
            url = self.server.add(f"/{feed}.xml", serve(rss(feed, guids)))
            lines.append(f"  - url: {url}\n    id: {feed}")
        (self.rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--rules", str(self.rules), "--db", str(self.db), *args])

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def stories(self) -> dict[str, int]:
        """guid -> story id of every stored item."""
        with Store(self.db) as store:
            found = store.search(None, limit=100)
            by_item = store.item_stories(s.id for s in found)
            return {s.item.guid: by_item[s.id] for s in found}

    def item_id(self, guid: str) -> int:
        with Store(self.db) as store:
            return next(s.id for s in store.search(None, limit=100) if s.item.guid == guid)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "alerts" / "japan-korea.yaml", rules / "alerts")
    with FeedServer() as server:
        yield Setup(server, rules, tmp_path / "monitor.db")


def first_poll(setup: Setup) -> dict[str, int]:
    setup.serve({"wire": ["wire-1"], "courier": ["courier-1", "courier-2"], "tokyo": ["nhk-1"]})
    setup.ok("poll")
    return setup.stories()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_poll_links_one_event_and_keeps_the_look_alike_apart(setup: Setup) -> None:
    got = first_poll(setup)
    assert set(got) == set(REPORTS)  # every new item has a story
    assert got["wire-1"] == got["courier-1"]  # same event, same language, near-identical
    assert got["courier-2"] not in (got["wire-1"], got["nhk-1"])
    listed = {s["id"]: s for s in lines(setup.ok("stories", "--json"))}
    assert set(listed) == set(got.values())
    story = listed[got["wire-1"]]
    assert story["outlets"][:2] == ["wire", "courier"] or "tokyo" in story["outlets"]
    assert story["reports"] == len([g for g in got if got[g] == got["wire-1"]])
    assert story["headline"]["title"] == REPORTS["wire-1"][2]  # the first report
    assert "korea-missiles" in story["rules"] and "KP" in story["regions"]
    assert story["growth"] == {"last_hour": story["reports"], "last_6h": story["reports"]}
    assert listed[got["courier-2"]]["reports"] == 1
    text = setup.ok("stories")
    assert f"story {got['wire-1']}: {REPORTS['wire-1'][2]}" in text


def test_stories_show_tells_each_report_and_why(setup: Setup) -> None:
    got = first_poll(setup)
    doc = json.loads(setup.ok("stories", "show", str(got["wire-1"]), "--json"))
    members = doc["members"]
    assert [m["title"] for m in members][:1] == [REPORTS["wire-1"][2]]
    # Feeds are stored in the order they answer: whichever came first started the story.
    (started,) = [m for m in members if m["started"]]
    joined = next(m for m in members if m is not started)
    assert joined["why"] and joined["score"] > 0 and not joined["manual"]
    text = setup.ok("stories", "show", str(got["wire-1"]))
    assert "started the story" in text and "joined, score" in text
    assert text.index(REPORTS["wire-1"][2]) < text.index(REPORTS["courier-1"][2])  # by time


def test_filters_by_time_rule_and_region(setup: Setup) -> None:
    got = first_poll(setup)
    assert len(lines(setup.ok("stories", "--json", "--since", "2h"))) == len(set(got.values()))
    assert lines(setup.ok("stories", "--json", "--since", "1m")) == []
    ruled = {s["id"] for s in lines(setup.ok("stories", "--json", "--rule", "korea-missiles"))}
    assert ruled == set(got.values())
    assert lines(setup.ok("stories", "--json", "--rule", "no-such-rule")) == []
    assert {s["id"] for s in lines(setup.ok("stories", "--json", "--region", "kp"))} == ruled
    assert lines(setup.ok("stories", "--json", "--region", "TW")) == []
    assert setup.run("stories", "--region", "TW").stderr == "no stories found\n"
    typo = setup.run("stories", "--rule", "korea-missile", "--region", "north korea")
    assert typo.exit_code == 0 and typo.stdout == ""
    alerts, ids = setup.rules / "alerts", "korea-missiles?"
    assert typo.stderr.splitlines() == [
        "no stories found: no region has the code 'north korea' (did you mean KP?)",
        f"no stories found: no rule has the id 'korea-missile' in {alerts} (did you mean {ids})",
    ]


def test_split_and_merge_are_kept_through_a_later_poll(setup: Setup) -> None:
    got = first_poll(setup)
    main_story, look_alike = got["wire-1"], got["courier-2"]
    merged = setup.ok("stories", "merge", str(main_story), str(look_alike))
    assert f"story {look_alike} merged into story {main_story}: 1 report moved" in merged
    courier = setup.item_id("courier-1")
    split = setup.ok("stories", "split", str(courier))
    after = setup.stories()
    assert f"item {courier} left story {main_story}: it is story {after['courier-1']}" in split
    assert after["courier-2"] == main_story != after["courier-1"]

    # A later poll brings a new report; the corrections stay as the analyst left them.
    REPORTS["wire-2"] = ("wire", 1, "North Korea fires ballistic missile, Japan protests", "")
    try:
        setup.serve({"wire": ["wire-1", "wire-2"], "courier": ["courier-1", "courier-2"]})
        setup.ok("poll")
        later = setup.stories()
    finally:
        del REPORTS["wire-2"]
    assert "wire-2" in later
    assert {g: later[g] for g in after} == after
    shown = json.loads(setup.ok("stories", "show", str(after["courier-1"]), "--json"))
    assert shown["members"][0]["manual"] is True
    assert shown["members"][0]["why"] == ["split by hand"]
    gone = json.loads(setup.ok("stories", "show", str(look_alike), "--json"))
    assert gone == {"id": look_alike, "merged_into": main_story}
    assert f"merged into story {main_story}" in setup.ok("stories", "show", str(look_alike))


def test_unknown_ids_get_one_line_errors(setup: Setup) -> None:
    got = first_poll(setup)
    for args, message in [
        (("stories", "show", "999"), "no story with id 999 in"),
        (("stories", "split", "999"), "no item with id 999 in"),
        (("stories", "merge", str(got["wire-1"]), "999"), "no story with id 999 in"),
        (("items", "search", "--story", "999"), "no story with id 999 in"),
    ]:
        result = setup.run(*args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("monitor: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    setup.ok("stories", "merge", str(got["wire-1"]), str(got["courier-2"]))
    again = setup.run("stories", "merge", str(got["wire-1"]), str(got["courier-2"]))
    assert again.exit_code == 1 and "was merged into story" in again.stderr
    searched = setup.run("items", "search", "--story", str(got["courier-2"]))
    assert searched.exit_code == 1 and f"use {got['wire-1']}" in searched.stderr
    alone = setup.run("stories", "split", str(setup.item_id("nhk-1")))
    if got["nhk-1"] not in (got["wire-1"],):  # alone in its story: nothing to split
        assert alone.exit_code == 1 and "already the only report" in alone.stderr
    same = setup.run("stories", "merge", "1", "1")
    assert same.exit_code == 2 and "two different story ids" in same.output


def test_items_and_rules_carry_the_story(setup: Setup) -> None:
    got = first_poll(setup)
    searched = lines(setup.ok("items", "search", "--json"))
    assert {d["guid"]: d["story"] for d in searched} == got
    only = lines(setup.ok("items", "search", "--json", "--story", str(got["wire-1"])))
    assert {d["guid"] for d in only} == {g for g in got if got[g] == got["wire-1"]}
    tested = lines(setup.ok("rules", "test", "--since", "1d", "--json"))
    assert {d["guid"]: d["story"] for d in tested} == got
    adhoc = lines(setup.ok("rules", "test", "--text", "North Korea fires a missile", "--json"))
    assert adhoc[0]["story"] is None
    item = setup.item_id("wire-1")
    assert json.loads(setup.ok("items", "show", str(item), "--json"))["story"] == got["wire-1"]
    assert f"story: {got['wire-1']} (" in setup.ok("items", "show", str(item))


def test_the_readme_stories_block_runs_as_written(tmp_path: Path) -> None:
    out = run_block(readme_block("Stories"), tmp_path)
    said = {k.split(" state/demo.db ", 1)[-1]: v for k, v in out.items()}
    assert "regions: KP" in said["stories --region KP"]
    ruled = lines(said["stories --rule korea-missiles --json"])
    assert ruled and all("korea-missiles" in s["rules"] for s in ruled)
    assert said["stories show 1"].startswith("story 1: ")
    assert "started the story" in said["stories show 1"]
    assert {d["story"] for d in lines(said["items search --story 1 --json"])} == {1}
    assert said["stories merge 1 2"].startswith("story 2 merged into story 1: ")
    assert said["stories show 2"].startswith("story 2 was merged into story 1")
    # The last line splits a report of story 1 (after the merge: one of story 1's or 2's).
    [split] = [v for k, v in said.items() if k.startswith("stories split ")]
    assert re.match(r"item \d+ left story 1: it is story \d+ now", split), split


def test_the_service_links_each_cycle_and_keeps_a_split_made_meanwhile(setup: Setup) -> None:
    """`monitor run` as a subprocess: it keeps its linker between cycles, so a split made by
    another process (the CLI, here in this one) must be seen before its next cycle links."""
    setup.serve({"wire": ["wire-1"], "courier": ["courier-1", "courier-2"]})
    service = RunningService(setup.rules, setup.db)
    try:
        service.wait_for("new reports linked to stories")
        service.wait_for("poll cycle: 2 feeds")
        first = setup.stories()
        assert first["wire-1"] == first["courier-1"] != first["courier-2"]
        setup.ok("stories", "split", str(setup.item_id("courier-1")))
        split = setup.stories()
        # A new outlet: the service polls it at once, and links its report.
        REPORTS["wire-2"] = ("tokyo", 1, "North Korea fires ballistic missile, Japan protests", "")
        try:
            setup.serve(
                {"wire": ["wire-1"], "courier": ["courier-1", "courier-2"], "tokyo": ["wire-2"]}
            )
            service.wait_for("new reports linked to stories")
            service.wait_for("poll cycle: 1 feeds")
        finally:
            del REPORTS["wire-2"]
        later = setup.stories()
    finally:
        assert service.stop() == 0
    assert "wire-2" in later
    assert {g: later[g] for g in split} == split  # the split stayed; nothing else moved


def test_a_bad_since_is_a_usage_error_not_a_traceback(setup: Setup) -> None:
    for command in (("stories",), ("items", "search")):
        result = setup.run(*command, "--since", "soon")
        assert result.exit_code == 2, result.output
        assert "Invalid value for --since: bad duration 'soon'" in result.output
