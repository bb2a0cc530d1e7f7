"""Full-text search on PostgreSQL with SQLite's results: the tsvector the store writes and the
tsquery a search becomes.

SQLite's index is FTS5 (`unicode61`, `remove_diacritics 2`) over `textnorm.search_text` of
title and summary. Here the store writes `items_fts.doc` itself, from that same folded text:

- Tokens are cut and folded exactly as `unicode61` does (`tokens`), from a table made by
  asking SQLite's tokenizer about every character (`data/fts5_unicode61.tsv`, see
  scripts/gen_fts5_unicode61.py): it differs from Unicode's letter/number categories (emoji
  and characters newer than its tables are letters to it; combining marks continue a token
  without starting one, and most are dropped). One Han or kana character stays one token, since
  `search_text` spaced them apart, so the `simple` configuration needs no segmenter.
- The tsvector is written as a literal and cast (`?::tsvector`), never with `to_tsvector`:
  PostgreSQL's own parser must not cut the text again. Title words are at positions 1.. with
  weight A, summary words B, after a gap wider than any NEAR distance, so a phrase or a NEAR
  never joins the two fields, as FTS5's columns never do.
- PostgreSQL's limits: a position above 16383 is stored as 16383 (words that far into a
  summary are still found, but phrases and NEAR among them are not exact); a lexeme keeps its
  first 256 positions (a word repeated more often is found, but not in a phrase or NEAR by
  its later places); a lexeme is at most 2046 bytes (longer tokens are cut there, on both
  sides, so they still meet). News items stay far from all three.

A search becomes a tsquery from the same parsed tree as FTS5's expression (`ftsquery`), term
by term, each lexeme quoted: nothing a user types is ever tsquery syntax. `None` comes back
exactly where `ftsquery.fts_expr` gives None, so both backends split a search the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise, product

from monitor.match.nodes import And, Field, Near, Node, Not, Or, Phrase, Term, walk
from monitor.match.query import MAX_NEAR
from monitor.match.textnorm import Script, search_text, term_script
from monitor.store.ftsquery import _HAS_TOKEN, _MAX_NEAR_GROUPS, SearchQueryError, near_sides

# A lexeme no document has (tokens are runs of letters): the tsquery that matches nothing,
# as FTS5's empty phrase `""`.
NOWHERE = "'-'"
ANY_FIELD = "AB"  # title A, summary B
_WEIGHT = {"title": "A", "summary": "B"}
# Unused positions between the title and the summary: more than the widest NEAR may span
# beyond its first phrase (FTS5 columns are never near each other).
GAP = MAX_NEAR + 1
_MAX_LEXEME = 2046  # bytes, PostgreSQL's limit
# NEAR placements one search may spell out. PostgreSQL reads a tsquery in time that grows
# with the square of its size (measured: 8,000 placements 0.07 s, 32,000 1.1 s, 128,000
# ~17 s), so wider ones are refused: four pairs of alternatives at NEAR/1000 still fit.
MAX_PLACEMENTS = 10_000
_ASCII_TOKEN = re.compile(r"[0-9a-z]+")
_WORDS = re.compile(r"[^\W_]+")  # letters and digits: unicode61's tokens, but for `_odd`


# --- tokens, as unicode61 makes them --------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    tokens: re.Pattern[str]  # a token of unfolded text
    fold: dict[int, str]  # what a character becomes ("": dropped)
    odd: re.Pattern[str]  # a BMP character `_WORDS` would not treat as unicode61 does


@cache
def _table() -> _Table:
    """The generated table (`data/fts5_unicode61.tsv`), read on first use (~50 ms)."""
    text = resources.files("monitor").joinpath("data/fts5_unicode61.tsv").read_text("utf-8")
    ranges: dict[str, list[tuple[int, int]]] = {"t": [], "c": []}
    fold: dict[int, str] = {}
    for line in text.splitlines():
        if line.startswith("R\t"):
            _, first, last, kind = line.split("\t")
            ranges[kind].append((int(first, 16), int(last, 16)))
        elif line.startswith("F\t"):
            _, char, folded = line.split("\t")
            fold[int(char, 16)] = "" if folded == "none" else chr(int(folded, 16))
    starts, marks = _class(ranges["t"]), _class(ranges["c"])
    return _Table(re.compile(f"[{starts}][{starts}{marks}]*"), fold, _odd(ranges, fold))


def _class(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(f"\\U{first:08x}-\\U{last:08x}" for first, last in ranges)


def _odd(ranges: dict[str, list[tuple[int, int]]], fold: dict[int, str]) -> re.Pattern[str]:
    """The BMP characters on which Python's `[^\\W_]` and unicode61 disagree (symbols, marks,
    characters one of them does not know), or that unicode61 folds."""
    starts = {c for first, last in ranges["t"] for c in range(first, min(last, 0xFFFF) + 1)}
    odd: list[tuple[int, int]] = list(ranges["c"])
    for c in range(0x80, 0x10000):
        if (c in starts) != bool(_WORDS.match(chr(c))) or c in fold or 0xD800 <= c < 0xE000:
            if odd and odd[-1][1] == c - 1:
                odd[-1] = (odd[-1][0], c)
            else:
                odd.append((c, c))
    return re.compile(f"[{_class(odd)}]")


def tokens(text: str) -> list[str]:
    """The tokens FTS5's `unicode61 remove_diacritics 2` makes of `text`, in order.

    Usual text takes a plain word regex (~3x faster: the full table is a class of hundreds
    of ranges, astral ones tested one by one). Folding the whole text before cutting it is
    the same as folding each token: no character folds into one of another kind (the
    generator checks), and those dropped only ever continue a token.
    """
    if text.isascii():
        found = _ASCII_TOKEN.findall(text.lower())
    elif max(text) <= "\uffff" and not (table := _table()).odd.search(text):
        found = _WORDS.findall(text)
    else:
        table = _table()
        found = table.tokens.findall(text.translate(table.fold))
    if max(map(len, found), default=0) * 4 > _MAX_LEXEME:
        return [_lexeme(t) for t in found]
    return found


def _lexeme(token: str) -> str:
    if len(token.encode()) > _MAX_LEXEME:
        token = token.encode()[:_MAX_LEXEME].decode(errors="ignore")
    return token


def _quoted(lexeme: str) -> str:
    if "'" in lexeme or "\\" in lexeme:
        lexeme = lexeme.replace("\\", "\\\\").replace("'", "''")
    return f"'{lexeme}'"


def tsvector(title: str, summary: str) -> str:
    """The tsvector literal of an item's folded title and summary (`search_text` of each)."""
    positions: dict[str, list[str]] = {}
    words = tokens(title)
    for at, word in enumerate(words, start=1):
        positions.setdefault(word, []).append(f"{at}A")
    for at, word in enumerate(tokens(summary), start=len(words) + GAP + 1):
        positions.setdefault(word, []).append(f"{at}B")
    return " ".join(f"{_quoted(word)}:{','.join(at)}" for word, at in positions.items())


# --- queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """A term or phrase as lexemes in a row; the last one a prefix if `prefix`."""

    lexemes: tuple[str, ...]
    prefix: bool = False


def words(text: str, *, prefix: bool = False) -> Words:
    """A term or phrase as `ftsquery.fts_phrase` sees it: folded, a Hangul term a prefix; no
    lexeme at all when it has no token (then it matches nothing)."""
    folded = search_text(text.strip())
    if not _HAS_TOKEN.search(folded):
        return Words(())
    prefix = prefix or term_script(folded.rstrip()[::-1]) is Script.HANGUL
    return Words(tuple(tokens(folded)), prefix)


def ts_phrase(text: str, *, prefix: bool = False, fields: str = ANY_FIELD) -> str:
    """One term or phrase as a tsquery: its lexemes one position apart, in `fields`."""
    return _placed([(0, words(text, prefix=prefix))], fields)


def _placed(parts: Sequence[tuple[int, Words]], fields: str) -> str:
    """Phrases starting at the given offsets from a common start, all in the same field:
    one chain of lexemes with the distance between each and the next (`<0>`: the same
    position, where phrases overlap)."""
    if not fields or not any(w.lexemes for _, w in parts):
        return NOWHERE
    at = sorted(
        ((start + n, lexeme) for start, phrase in parts for n, lexeme in _lexemes(phrase, fields)),
        key=lambda pair: pair[0],
    )
    chain = at[0][1]
    for (before, _), (offset, lexeme) in pairwise(at):
        chain += f" <{offset - before}> {lexeme}"
    return f"({chain})" if len(at) > 1 else chain


def _lexemes(phrase: Words, fields: str) -> list[tuple[int, str]]:
    """Each lexeme of a phrase as a tsquery operand (quoted, flagged), with its offset."""
    flag = "" if fields == ANY_FIELD else fields
    last = len(phrase.lexemes) - 1
    out = []
    for n, lexeme in enumerate(phrase.lexemes):
        star = "*" if phrase.prefix and n == last else ""
        out.append((n, f"{_quoted(lexeme)}:{star}{flag}" if star or flag else _quoted(lexeme)))
    return out


def ts_expr(node: Node) -> str | None:
    """The tsquery of a query tree made of text only; None where `fts_expr` is None. Raises
    SearchQueryError for a NEAR too wide to spell out (`MAX_PLACEMENTS`)."""
    width = _width(node)
    if width > MAX_PLACEMENTS:
        raise SearchQueryError(
            f"a NEAR this wide cannot be searched on PostgreSQL ({width:,} placements of its"
            f" words to try, at most {MAX_PLACEMENTS:,})",
            hint="narrow the distance or the alternatives, or try it as a rule:"
            " `monitor rules test --since 30d`",
        )
    return _expr(node, ANY_FIELD)


def _width(node: Node) -> int:
    """How many placements the NEARs of `node` spell out (see `_near_group`)."""
    total = 0
    for near in (n for n in walk(node) if isinstance(n, Near)):
        left, right = _sides(near.left), _sides(near.right)
        if left is None or right is None or len(left) * len(right) > _MAX_NEAR_GROUPS:
            continue  # not searched at all (`ftsquery._near`)
        gap = max(near.n - 1, 0)
        pairs = product((w for _, w in left), (w for _, w in right))
        total += sum(len(a.lexemes) + len(b.lexemes) + 2 * gap + 1 for a, b in pairs)
    return total


def _expr(node: Node, fields: str) -> str | None:
    if isinstance(node, Term):
        return ts_phrase(node.text, prefix=node.prefix, fields=fields)
    if isinstance(node, Phrase):
        return ts_phrase(node.text, fields=fields)
    if isinstance(node, Field):
        # FTS5 intersects nested column filters: `title:(summary:x)` matches nothing.
        return _expr(node.child, _within(fields, node.name))
    if isinstance(node, Or):
        branches = [_expr(child, fields) for child in node.children]
        return None if None in branches else joined("|", [str(b) for b in branches])
    if isinstance(node, And):
        return _and(node, fields)
    return _near(node, fields) if isinstance(node, Near) else None


def _within(fields: str, name: str | None) -> str:
    return fields if name is None else "".join(f for f in fields if f == _WEIGHT[name])


def joined(op: str, parts: list[str]) -> str:
    """`parts` joined by `op`, nested as a balanced tree: a long flat chain would nest as
    deep as it is long in PostgreSQL's recursive evaluation."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return f"({joined(op, parts[:half])} {op} {joined(op, parts[half:])})"


def _and(node: And, fields: str) -> str | None:
    kept = [_expr(c, fields) for c in node.children if not isinstance(c, Not)]
    taken = [_expr(c.child, fields) for c in node.children if isinstance(c, Not)]
    if not kept or None in kept or None in taken:
        return None
    return joined("&", [str(k) for k in kept] + [f"!{t}" for t in taken])


def _near(node: Near, fields: str) -> str | None:
    """As `ftsquery._near`, one FTS5 NEAR group per pair of alternatives, each spelt out as
    every placement FTS5 accepts (see `_near_group`)."""
    left, right = _sides(node.left), _sides(node.right)
    if left is None or right is None or len(left) * len(right) > _MAX_NEAR_GROUPS:
        return None
    groups = []
    for (field_a, a), (field_b, b) in product(left, right):
        if field_a and field_b and field_a != field_b:
            continue
        group_fields = _within(fields, field_a or field_b)
        groups.append(_near_group(a, b, max(node.n - 1, 0), group_fields))
    return joined("|", groups) if groups else NOWHERE


def _near_group(a: Words, b: Words, gap: int, fields: str) -> str:
    """FTS5's `NEAR(a b, gap)`: both in one field, the later one starting at most `gap`
    tokens after the end of the earlier one, overlapping allowed (its test: the starts differ
    by at most the earlier phrase's length + gap). A phrase with no token is left out of the
    group, as FTS5 does."""
    if not a.lexemes or not b.lexemes:
        return _placed([(0, a), (0, b)], fields)
    if not fields:
        return NOWHERE
    placements = [[(0, a), (s, b)] for s in range(len(a.lexemes) + gap + 1)]
    placements += [[(0, b), (s, a)] for s in range(1, len(b.lexemes) + gap + 1)]
    # Every lexeme first, on its own: a row without them is refused at once, instead of
    # after trying each placement (measured: NEAR/1000 over 20,000 items, 7.8 s -> ms).
    present = {operand for phrase in (a, b) for _, operand in _lexemes(phrase, fields)}
    return joined("&", [*sorted(present), joined("|", [_placed(p, fields) for p in placements])])


def _sides(node: Node) -> list[tuple[str | None, Words]] | None:
    def leaf(node: Term | Phrase) -> Words:
        return words(node.text, prefix=isinstance(node, Term) and node.prefix)

    return near_sides(node, leaf)
