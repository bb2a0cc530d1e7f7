"""Benchmark of the matching engine: items/s and compile time at 1,000 and 10,000 rules.

    python benchmarks/match.py [--items 20000] [--runs 5] [--seed 1]

Synthetic but shaped like the real load: rules of 3-5 terms (some phrases, prefixes, NEAR,
NOT), a stand-in list of 1,000 gazetteer-like aliases in the same automaton, and items of
about 1 KB (title + summary; a tenth in Chinese/Japanese) where a few rule terms appear among
ordinary words. Prints medians of several runs, and a naive baseline (one regex per rule,
over a small sample) for the ratio. Single process, single core.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from monitor.match import Matcher
from monitor.models import Item
from monitor.query import parse_query
from monitor.rules import Rule
from monitor.textnorm import fold

NOW = datetime(2025, 11, 20, tzinfo=UTC)
CONSONANTS, VOWELS = "bcdfghjklmnprstvwz", "aeiou"
HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def pseudo_word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))


def vocabulary(rng: random.Random, size: int, low: int, high: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add(pseudo_word(rng, rng.randint(low, high)))
    return sorted(words)


def make_query(rng: random.Random, topic: list[str]) -> str:
    """A rule of 3-5 terms in one of the shapes users write."""
    t = rng.sample(topic, 5)
    shape = rng.randrange(6)
    if shape == 0:
        return f'("{t[0]} {t[1]}" OR {t[2]}) AND {t[3]}*'
    if shape == 1:
        return f"{t[0]} NEAR/8 ({t[1]} OR {t[2]}) AND NOT {t[3]}"
    if shape == 2:
        return f"({t[0]} OR {t[1]} OR {t[2]}) AND ({t[3]} OR {t[4]})"
    if shape == 3:
        return f"title:{t[0]} AND ({t[1]} OR {t[2]} OR {t[3]})"
    if shape == 4:
        return f'"{t[0]} {t[1]}" AND {t[2]} -{t[3]}'
    return f"{t[0]} {t[1]} OR {t[2]} {t[3]}"


def make_rules(rng: random.Random, count: int, topic: list[str]) -> list[Rule]:
    rules = []
    for i in range(count):
        query = make_query(rng, topic)
        rules.append(Rule(id=f"rule-{i}", title=f"rule {i}", query=query, tree=parse_query(query)))
    return rules


def make_aliases(rng: random.Random) -> list[str]:
    names = [pseudo_word(rng, rng.randint(2, 4)).capitalize() for _ in range(800)]
    names += [f"{pseudo_word(rng, 2)} {pseudo_word(rng, 3)}".title() for _ in range(100)]
    names += ["".join(rng.sample(HAN, rng.randint(2, 3))) for _ in range(100)]
    return names


def make_text(rng: random.Random, common: list[str], topic: list[str], size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        pool = topic if rng.random() < 0.01 else common  # ~1 topic word per 100: a few per item
        word = rng.choice(pool)
        words.append(word.capitalize() if rng.random() < 0.1 else word)
        length += len(word) + 1
    return " ".join(words)[:size] + "."


def make_items(rng: random.Random, count: int, common: list[str], topic: list[str]) -> list[Item]:
    items = []
    for i in range(count):
        if i % 10 == 9:  # a Chinese/Japanese item: ~330 characters is about 1 KB of UTF-8
            title = "".join(rng.choices(HAN, k=20))
            summary = "".join(rng.choices(HAN, k=310))
        else:
            title = make_text(rng, common, topic, 80)
            summary = make_text(rng, common, topic, 920)
        items.append(
            Item(
                feed_id="bench",
                guid=str(i),
                link=None,
                title=title,
                summary=summary,
                html="",
                author=None,
                lang=None,
                published=NOW,
                first_seen=NOW,
                content_hash="",
            )
        )
    return items


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive_baseline(rules: list[Rule], items: list[Item]) -> float:
    """One regex per rule (its terms as whole words), tried on every item: items/s."""
    patterns = []
    for rule in rules:
        terms = re.findall(r"[a-z]+", fold(rule.query or ""))
        patterns.append(re.compile(r"\b(?:" + "|".join(sorted(set(terms))) + r")\b"))
    texts = [fold(it.title) + "\n" + fold(it.summary) for it in items]
    start = time.perf_counter()
    for text in texts:
        for pattern in patterns:
            pattern.search(text)
    return len(items) / (time.perf_counter() - start)


def bench(count: int, args: argparse.Namespace, items: list[Item], aliases: list[str],
          topic: list[str]) -> float:  # fmt: skip
    rng = random.Random(args.seed + count)
    rules = make_rules(rng, count, topic)
    compile_s = median_time(lambda: Matcher.compile(rules, aliases), args.runs)
    matcher = Matcher.compile(rules, aliases)
    matched = sum(1 for it in items if matcher.match(it))
    run_s = median_time(lambda: [matcher.match(it) for it in items], args.runs)
    rate = len(items) / run_s
    print(
        f"{count:>6} rules: compile {compile_s:.3f} s, {rate:,.0f} items/s "
        f"({len(items):,} items, {matched:,} with a match; median of {args.runs})"
    )
    if count == 1000:
        sample = items[: args.naive_sample]
        naive = naive_baseline(rules, sample)
        print(f"        naive (one regex per rule, {len(sample)} items): {naive:,.0f} items/s"
              f" -> automaton is {rate / naive:,.0f}x faster")  # fmt: skip
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--naive-sample", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    common = vocabulary(rng, 5000, 1, 4)
    topic = [w for w in vocabulary(rng, 6000, 2, 5) if w not in set(common)][:4000]
    aliases = make_aliases(rng)
    items = make_items(rng, args.items, common, topic)
    size = sum(len((it.title + it.summary).encode()) for it in items) / len(items)
    print(f"items: {len(items):,}, {size:,.0f} bytes on average; aliases: {len(aliases):,}")
    small = bench(1000, args, items, aliases, topic)
    large = bench(10_000, args, items, aliases, topic)
    print(f"10,000 vs 1,000 rules: throughput ratio {small / large:.2f}x (target: within 2x)")


if __name__ == "__main__":
    main()
