"""A user's search (`monitor items search`) as an FTS5 MATCH expression, for the store.

The index holds `textnorm.search_text` of title and summary (see store.py), so each term is
put through the same function and quoted: nothing a user types is ever FTS syntax.
"""

from __future__ import annotations

import re

from monitor.match.textnorm import Script, search_text, term_script

_HAS_TOKEN = re.compile(r"[^\W_]")  # a letter or digit: what `unicode61` makes tokens of
_NOWHERE = '""'  # an empty FTS5 phrase, which matches no row


def _terms(query: str) -> list[str]:
    """Split a user query into terms: `"quoted phrases"` and whitespace-separated words.

    Never fails: an unclosed quote runs to the end, empty quotes are dropped.
    """
    terms: list[str] = []
    query = query.replace("\x00", " ")  # the FTS5 query parser stops at a NUL
    for n, chunk in enumerate(query.split('"')):
        if n % 2:  # odd chunks sit between quotes: one phrase each
            terms.append(chunk)
        else:
            terms.extend(chunk.split())
    return [t for t in terms if t.strip()]


def _fts_phrase(term: str) -> str | None:
    """One user term as an FTS5 string, i.e. the phrase of its tokens (None if it has none).

    Being a quoted string, nothing in it is FTS syntax. A trailing `*` asks for a prefix;
    a Hangul term is always one, since particles follow the noun (`북한` finds `북한의`).
    """
    stripped = term.strip().rstrip("*")
    text = search_text(stripped)
    if not _HAS_TOKEN.search(text):
        return None
    prefix = stripped != term.strip() or term_script(text[::-1]) is Script.HANGUL
    return '"' + text.replace('"', '""') + '"' + ("*" if prefix else "")


def fts_query(query: str | None) -> str | None:
    """The FTS5 query for a user query: its terms ANDed; None when there is no term.

    Terms without a letter or digit (`-`, `%`) are left out; a query of nothing else finds
    nothing rather than everything.
    """
    terms = _terms(query or "")
    phrases = [p for p in map(_fts_phrase, terms) if p is not None]
    if terms and not phrases:
        return _NOWHERE
    return " AND ".join(phrases) or None
