"""The place names `benchmarks/match.py --gazetteer-scale` adds: real ones, in the mix of
scripts of the shipped gazetteer, new to it, and the same on every run."""

from __future__ import annotations

from benchmarks.match_names import real_names
from monitor.match.regions import load_gazetteer
from monitor.match.textnorm import fold, has_cjk


def test_real_names_are_new_distinct_and_in_four_scripts() -> None:
    known = {alias.text for alias in load_gazetteer().aliases}
    names = real_names(2000, known)
    assert len(names) == 2000
    folded = [fold(name).strip() for name in names]
    assert len(set(folded)) == 2000 and not set(folded) & known
    assert {"深圳市", "キンシャサ", "이스탄불"} <= set(names)  # big cities come first
    latin = sum(not has_cjk(name) for name in names)
    assert 0.1 < latin / len(names) < 0.6  # a big city has more names in CJK than in Latin
    assert real_names(2000, known) == names
