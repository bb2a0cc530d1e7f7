"""The values of the match stage: an alert rule as loaded (`Rule`, with its `Score` and
`Example`s) and what the engine reports when one matches (`Match`, with its `Hit`s).

Plain frozen values at the bottom of `monitor.match`: the loader (`rules.py`) builds rules, the
engine compiles them and returns matches, the example runner (`examples.py`) compares the two.
All import them from here, and none needs another for them: no import circle.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from monitor.match.nodes import FieldName, Node, Phrase, Term


# Rules travel to the parse workers (see poll.Parser); `labels` is a read-only mapping proxy,
# which pickle cannot handle by itself.
def _read_only(mapping: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(mapping)


copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))


@dataclass(frozen=True)
class Score:
    """EMM-style weighted terms: the weights of the distinct terms present are added up."""

    threshold: float
    terms: tuple[tuple[Term | Phrase, float], ...]


@dataclass(frozen=True)
class Example:
    """One `tests:` example: a bare string is a title; a mapping can set every field."""

    title: str
    summary: str = ""
    feed: str | None = None
    tags: tuple[str, ...] = ()
    lang: str | None = None
    regions: tuple[str, ...] | None = None  # None: computed by the region tagger, if given
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RuleWarning:
    """Something in a rule that loads but is likely a mistake (`monitor rules check` shows
    it). A plain value, not an exception: rules are pickled to the parse workers."""

    message: str
    line: int | None = None  # 1-based, in the rule's file
    column: int | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str = "medium"
    query: str | None = None  # as written
    tree: Node | None = None  # parsed `query`
    score: Score | None = None
    feeds: tuple[str, ...] = ()  # feed ids and `tag:NAME`
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    match_examples: tuple[Example, ...] = ()
    no_match_examples: tuple[Example, ...] = ()
    path: str = ""
    line: int | None = field(default=None, compare=False)
    enabled: bool = True  # false: loaded and checked, never matched
    mute_until: date | None = None  # matches are stored, routes hold them until this date
    warnings: tuple[RuleWarning, ...] = field(default=(), compare=False, repr=False)

    def muted(self, now: datetime, timezone: str = "UTC") -> bool:
        """Whether routes hold this rule's matches at `now`: until `mute_until` begins in the
        route's time zone (a desk in Tokyo expects its morning, not UTC's)."""
        return self.mute_until is not None and now.astimezone(ZoneInfo(timezone)).date() < (
            self.mute_until
        )


@dataclass(frozen=True)
class Hit:
    """One place a rule's term matched: offsets are in the folded text of `field`."""

    term: str  # as the rule wrote it: `drill*`, `"Taiwan Strait"`
    field: FieldName
    start: int
    end: int


class Match:
    """A rule that matched an item, with what it saw so it can explain itself.

    A value (compared, hashed and pickled by rule, score and hits). `hits` may be given as a
    function that finds them: they are worked out on first use, since most matches are stored
    or counted and never explained (the positions are the dear part of matching). `terms`,
    the rule's terms that hit, is what the store keeps: the engine tells them without working
    out a position (`terms` given as a function); else they are read from the hits.
    """

    __slots__ = ("_find", "_hits", "_terms", "rule_id", "score")

    def __init__(
        self,
        rule_id: str,
        score: float,
        hits: Iterable[Hit] | Callable[[], tuple[Hit, ...]],
        terms: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        self.rule_id = rule_id
        self.score = score  # 0 when the rule has no score block
        self._hits: tuple[Hit, ...] | None = None if callable(hits) else tuple(hits)
        self._find: Callable[[], tuple[Hit, ...]] | None = hits if callable(hits) else None
        self._terms = terms

    @property
    def hits(self) -> tuple[Hit, ...]:
        if self._hits is None:
            assert self._find is not None
            self._hits, self._find = self._find(), None  # the scan it read can go now
        return self._hits

    @property
    def terms(self) -> tuple[str, ...]:
        """Each term that hit, once (`hits_of_terms` finds their hits again in the text)."""
        if self._terms is not None:
            return self._terms()
        return tuple(dict.fromkeys(h.term for h in self.hits))

    def _key(self) -> tuple[str, float, tuple[Hit, ...]]:
        return self.rule_id, self.score, self.hits

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Match(rule_id={self.rule_id!r}, score={self.score!r}, hits={self.hits!r})"

    def __reduce__(self) -> tuple[type[Match], tuple[str, float, tuple[Hit, ...]]]:
        # Matches cross to the main process from the parse workers: the hits go as values.
        return Match, self._key()

    def explain(self) -> str:
        """One line: the rule, its score and every hit, e.g. `r (score 5): PLA title@0-3`."""
        hits = ", ".join(f"{h.term} {h.field}@{h.start}-{h.end}" for h in self.hits)
        return f"{self.rule_id} (score {self.score:g}): {hits or 'no term hits'}"


def held(rule: Rule | None, now: datetime, timezone: str = "UTC") -> bool:
    """Whether routes hold back a match of `rule` at `now`: the rule is muted. A rule deleted
    since it matched (None) is never held: its matches are still delivered."""
    return rule is not None and rule.muted(now, timezone)
