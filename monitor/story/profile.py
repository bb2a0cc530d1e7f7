"""What the linker keeps of a report and of an open story.

A report becomes `Evidence`: language-independent features, each a `kind:value` string
(`region:KP`, `entity:kp-sunan`, `rule:korea-missiles`, `number:650km`, `code:2026a`,
`op:strait-thunder`), and the shingles of its text (see `monitor.story.grouping.shingles`),
which only meet reports in the same language. A story is kept aggregated as a `Profile`: how
many of its reports have each feature and each shingle, per language, its span in time and
its outlets; never the reports themselves, so an open story costs the same however long its
texts were.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from sys import intern
from typing import Protocol

from monitor.match.textnorm import fold
from monitor.story.evidence import read_folded
from monitor.story.grouping import folded_shingles
from monitor.story.places import capitals


class ReportLike(Protocol):
    """The fields of `monitor.story.linker.Report` that evidence is read from."""

    @property
    def feed_id(self) -> str: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def published(self) -> datetime: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def regions(self) -> tuple[str, ...]: ...
    @property
    def entities(self) -> tuple[str, ...]: ...
    @property
    def concepts(self) -> tuple[str, ...]: ...
    @property
    def places(self) -> tuple[str, ...]: ...
    @property
    def text(self) -> TextRead | None: ...


# What one feature of each kind is worth, before its rarity is counted. A named place or
# person, a figure, a code or an operation name points at one development; a rule concept
# at a kind of development; a country at little more than a part of the world.
KIND_WEIGHT = {
    "region": 0.5,
    "capital": 1.0,
    "entity": 1.0,
    "rule": 0.7,
    "number": 1.2,
    "count": 0.5,
    "code": 1.5,
    "op": 1.5,
}
# Kinds whose sharing alone never joins a report to a story: countries and capitals (which
# mostly stand for their governments: "Tokyo protests") are named by most of this news, and
# round numbers by much of it; reports about different events share them all the time.
WEAK_KINDS = frozenset({"region", "capital", "count"})
# Kinds too common to find candidate stories by (a capital is rare enough to).
UNINDEXED_KINDS = frozenset({"region", "count"})


@dataclass(frozen=True)
class Evidence:
    """A report reduced to what linking compares."""

    lang: str
    published: datetime
    outlet: str
    features: frozenset[str]
    words: frozenset[str]
    # Each word's key in the index (`lang:word`), made once: scoring and growing ask often.
    keys: Mapping[str, str] = field(compare=False, repr=False)
    sequel: str | None = None  # a word saying it follows an earlier development
    places: frozenset[str] = frozenset()  # entity ids of places below a country


# What a report's text gives the linker, whatever its tags: the features read from it
# (numbers, codes, operations), its telling shingles joined by spaces (none has one), and its
# sequel word. Read where the text is folded anyway (a parse worker, beside the matcher) and
# small to send between processes: one string, not a set of fifty.
TextRead = tuple[tuple[str, ...], str, str | None]


def read_text(folded: str, words: bytes | None = None) -> TextRead:
    """The `TextRead` of a report's `title + "\n" + summary`, folded (`textnorm.fold`);
    `words`, its words if the matcher's scan found them already (`Scan.words`).

    Sorted: the evidence made of it is then laid out the same whichever process read it
    (each has its own string hashes), and so are the floats the linker sums over it."""
    found, shingles, sequel = _read(folded, words)
    return tuple(sorted(found)), " ".join(sorted(shingles)), sequel


def packed_read(read: TextRead) -> str:
    """`read` as it waits in the store beside its pending item (JSON: one short string)."""
    features, joined, sequel = read
    return json.dumps([features, joined, sequel], ensure_ascii=False, separators=(",", ":"))


def unpacked_read(packed: str | None) -> TextRead | None:
    """The `TextRead` that `packed_read` gave; None for none, or for a value that is not one
    (then the text is read again: a damaged row costs time, never a wrong story)."""
    if packed is None:
        return None
    try:
        features, joined, sequel = json.loads(packed)
    except (ValueError, TypeError):  # not JSON, or not three values
        return None
    if not (
        isinstance(features, list)
        and all(isinstance(f, str) for f in features)
        and isinstance(joined, str)
        and (sequel is None or isinstance(sequel, str))
    ):
        return None
    return tuple(features), joined, sequel


def _read(folded: str, words: bytes | None) -> tuple[list[str], frozenset[str], str | None]:
    seen = read_folded(folded)
    found = [f"number:{n}" if specific else f"count:{n}" for n, specific in seen.figures]
    found += [f"code:{c}" for c in seen.codes]
    found += [f"op:{o}" for o in seen.operations]
    return found, folded_shingles(folded, telling=True, words=words), seen.sequel


def evidence_of(report: ReportLike) -> Evidence:
    found = {f"region:{code}" for code in report.regions}
    capital = capitals()
    found.update(f"capital:{e}" if e in capital else f"entity:{e}" for e in report.entities)
    found.update(f"rule:{c}" for c in report.concepts)
    # Folding is most of what reading a text costs: done once, where it was read, if it was.
    read = report.text or read_text(fold(f"{report.title}\n{report.summary}"))
    textual, joined, sequel = read
    # Interned: the open stories then share one copy of each word (split makes new ones).
    words = frozenset(map(intern, joined.split(" "))) if joined else frozenset()
    found.update(textual)
    lang = (report.lang or "").split("-")[0].lower() or "?"
    return Evidence(
        lang=lang,
        published=report.published,
        outlet=report.feed_id,
        features=frozenset(found),
        words=words,
        keys={w: f"{lang}:{w}" for w in words},
        sequel=sequel,
        places=frozenset(report.places),
    )


def kind(feature: str) -> str:
    return feature.partition(":")[0]


@dataclass
class Profile:
    """An open story, aggregated (see the module docstring)."""

    id: int
    first: datetime
    last: datetime
    size: int = 0
    features: Counter[str] = field(default_factory=Counter)
    words: dict[str, Counter[str]] = field(default_factory=dict)  # language -> shingle counts
    langs: Counter[str] = field(default_factory=Counter)
    outlets: Counter[str] = field(default_factory=Counter)
    places: set[str] = field(default_factory=set)
    # What its vector lengths are made of ("" features, else a language's words): see
    # `monitor.story.rarity.Rarity`, which keeps them.
    sums: dict[str, list[float]] = field(default_factory=dict)
    synced: dict[str, int] = field(default_factory=dict)  # part -> `Rarity.version` it is exact at
    # Language -> the index keys (`lang:shingle`) of `words[lang]`, in its order: measuring a
    # length afresh reads them all, and building each again cost more than the rest.
    keys: dict[str, list[str]] = field(default_factory=dict)

    def add(self, ev: Evidence) -> tuple[frozenset[str], list[str]]:
        """Count `ev` in; returns the features and `lang:shingle` keys new to this story."""
        self.first = min(self.first, ev.published)
        self.last = max(self.last, ev.published)
        self.size += 1
        self.langs[ev.lang] += 1
        self.outlets[ev.outlet] += 1
        self.places |= ev.places
        new_features = ev.features.difference(self.features)
        self.features.update(ev.features)
        words = self.words.setdefault(ev.lang, Counter())
        # One string a key, however many stories hold it (`keys` keeps them).
        new_words = [intern(ev.keys[w]) for w in ev.words if w not in words]
        words.update(ev.words)  # the new ones go last, in the order `new_words` has them
        self.keys.setdefault(ev.lang, []).extend(new_words)
        return new_features, new_words

    def index_keys(self) -> set[str]:
        """Everything the story is indexed under: its features and `lang:shingle` keys."""
        out = set(self.features)
        for keys in self.keys.values():
            out.update(keys)
        return out

    def gap_hours(self, moment: datetime) -> float:
        """Hours from the story's span to `moment` (0 inside it)."""
        if moment < self.first:
            return (self.first - moment).total_seconds() / 3600
        after = (moment - self.last).total_seconds() / 3600
        return after if after > 0.0 else 0.0  # not max(): a call costs more, and this is hot
