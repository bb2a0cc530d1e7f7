"""`python -m benchmarks.poll --compare` on a 3-feed farm, with whichever tools are installed.

rss2email and reader come with the optional `bench` extra only, so every test here passes
whether they are installed or not, and checks what the comparison says in either case.
"""

from __future__ import annotations

import re
import sys

import pytest

from benchmarks import poll
from benchmarks._compare import MISSING, compare, installed
from benchmarks._farm import Farm

TOOLS = ("rss2email", "reader")
FEEDS, ITEMS = 3, 5


def test_a_missing_tool_is_reported_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in TOOLS:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    argv = ["--feeds", str(FEEDS), "--items", str(ITEMS), "--runs", "1", "--compare"]
    assert poll.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"monitor +cold +\d+\.\d+ s +\d+\.\d+ CPU-s +warm", out), out
    for module in TOOLS:
        assert re.search(rf"^  {module} +{re.escape(MISSING)}$", out, re.MULTILINE), out


def test_installed_tools_poll_the_same_farm_cold_and_warm() -> None:
    with Farm(FEEDS, ITEMS) as farm:
        results = compare([farm.url(i) for i in range(FEEDS)], ITEMS, runs=1)
    assert [r.tool.split()[0] for r in results] == list(TOOLS)
    for module, result in zip(TOOLS, results, strict=True):
        if installed(module) is None:
            assert result.note == MISSING
            continue
        # Each tool checked that it fetched every feed and stored every item.
        assert result.note == "", result.note
        assert result.cold is not None and result.warm is not None
        assert result.cold.wall > 0 and result.cold.cpu > 0
        assert result.warm.wall > 0


def test_a_tool_that_does_not_poll_every_feed_gives_no_figures() -> None:
    with Farm(1, ITEMS) as farm:
        urls = [farm.url(0), farm.url(0).replace("/feeds/", "/missing/")]
        results = compare(urls, ITEMS, runs=1)
    for module, result in zip(TOOLS, results, strict=True):
        expected = MISSING if installed(module) is None else "failed, no figures: "
        assert result.note.startswith(expected), result.note
        assert result.cold is None
