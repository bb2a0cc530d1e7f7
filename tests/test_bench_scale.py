"""`python -m benchmarks.scale` with tiny numbers: two instances on a throwaway PostgreSQL and
one on SQLite poll a 4-feed farm, and the report accounts for every feed in every phase."""

from __future__ import annotations

import re

import pytest

from benchmarks import scale

FEEDS = 4

pytestmark = pytest.mark.slow


def test_a_tiny_scale_run_shares_out_every_feed(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--feeds", str(FEEDS), "--items", "2", "--runs", "1", "--instances", "2"]
    assert scale.main([*argv, "--tick", "0.5"]) == 0
    out = capsys.readouterr().out
    shares = [line.split(":", 1)[1] for line in out.splitlines() if "feeds per instance" in line]
    # cold and warm, on PostgreSQL (two numbers: one per instance) and on SQLite (one)
    assert [len(s.split("/")) for s in shares] == [2, 2, 1, 1], out
    assert all(sum(int(n) for n in s.split("/")) == FEEDS for s in shares), out
    assert re.search(r"PostgreSQL: CPU [\d.]+ s; [\d,]+ commits", out), out
    assert re.search(r"cold: 2 instances on PostgreSQL took [\d.]+x the wall time", out), out
