"""The alert query language's tokenizer, its error, and the checks that need only tokens.

`Lexer` turns a query into `Token`s; the parser (`query.py`) builds the tree from them. Both
raise `QuerySyntaxError`, which knows the column and renders the query with a caret under the
problem. `query_warnings` finds what parses but is almost surely a slip: a lower-case `or`
between terms is searched as a word, not taken as the operator.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from monitor.errors import MonitorError
from monitor.match.nodes import FIELDS
from monitor.match.textnorm import fold, split_words

SCOPES = ("region", "entity", "feed", "tag", "lang")


class QuerySyntaxError(MonitorError):
    """A query that does not parse. `column` is 1-based; `render()` shows a caret under it."""

    def __init__(self, message: str, *, query: str, column: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.query = query
        self.column = column

    def render(self, indent: str = "    ") -> str:
        """The query on one line and a caret under the problem."""
        return render_caret(self.query, self.column, indent)

    def __str__(self) -> str:
        return f"column {self.column}: {super().__str__()}\n{self.render()}"


def render_caret(query: str, column: int, indent: str = "    ", width: int = 120) -> str:
    """`query` on one line (tabs and newlines shown as spaces) and a caret under `column`
    (1-based); a long query is cut to `width` characters around it."""
    line, caret = re.sub(r"\s", " ", query), column - 1
    if len(line) > width:
        start = max(0, min(caret - width // 2, len(line) - width))
        head, tail = ("…" if start else ""), ("…" if start + width < len(line) else "")
        line, caret = head + line[start : start + width] + tail, caret - start + len(head)
    return f"{indent}{line}\n{indent}{' ' * caret}^"


# --- tokenizer ------------------------------------------------------------------------------

TokKind = Literal["(", ")", "PHRASE", "WORD", "AND", "OR", "NOT", "NEAR", "FIELD", "SCOPE", "EOF"]


@dataclass(frozen=True)
class Token:
    kind: TokKind
    value: str
    col: int  # 0-based
    extra: str = ""  # the scope name for SCOPE, the digits for NEAR


_NEAR = re.compile(r"NEAR/(\d+)$", re.IGNORECASE)
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_STOP = set('()"') | {" ", "\t", "\n", "\r"}


class Lexer:
    def __init__(self, query: str) -> None:
        self.q = query
        self.i = 0
        self.tokens: list[Token] = []

    def error(self, message: str, col: int, hint: str | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.q, column=col + 1, hint=hint)

    def run(self) -> list[Token]:
        while self.i < len(self.q):
            ch = self.q[self.i]
            if ch.isspace():
                self.i += 1
            elif ch in "()":
                self.tokens.append(Token(ch, ch, self.i))  # type: ignore[arg-type]
                self.i += 1
            elif ch == '"':
                self.phrase()
            else:
                self.word()
        self.tokens.append(Token("EOF", "", len(self.q)))
        return self.tokens

    def phrase(self) -> None:
        start = self.i
        end = self.q.find('"', start + 1)
        if end < 0:
            raise self.error("unclosed quote", start, hint='end the phrase with "')
        text = self.q[start + 1 : end]
        if not split_words(fold(text)):
            raise self.error("empty phrase: it has no letters or digits to match", start)
        self.tokens.append(Token("PHRASE", text, start))
        self.i = end + 1

    def word(self) -> None:
        start = self.i
        while self.i < len(self.q) and self.q[self.i] not in _STOP:
            self.i += 1
        self.classify(self.q[start : self.i], start)

    def classify(self, word: str, col: int) -> None:
        if word in ("AND", "OR", "NOT"):
            self.tokens.append(Token(word, word, col))  # type: ignore[arg-type]
        elif near := _NEAR.match(word):
            self.tokens.append(Token("NEAR", word, col, extra=near.group(1)))
        elif word.upper() == "NEAR" or word.upper().startswith("NEAR/"):
            raise self.error("NEAR needs a distance in tokens", col, hint="write e.g. a NEAR/5 b")
        elif (prefix := _FIELD_PREFIX.match(word)) is not None:
            self.prefixed(prefix.group(1), word[prefix.end() :], col)
        elif len(word) > 1 and word[0] == "-" and word[1] != "-":
            # Google-style exclusion: `-film` is `NOT film`.
            self.tokens.append(Token("NOT", "-", col))
            self.classify(word[1:], col + 1)
        else:
            self.tokens.append(Token("WORD", word, col))

    def prefixed(self, name: str, rest: str, col: int) -> None:
        key = name.lower()
        if key in FIELDS:
            self.tokens.append(Token("FIELD", key, col))
            # What follows the colon is read as a token of its own: `title:(a b)`, `title:"x"`.
            self.i = col + len(name) + 1
        elif key in SCOPES:
            if not rest:
                raise self.error(f"{key}: needs a value right after the colon", col + len(name))
            self.tokens.append(Token("SCOPE", rest, col, extra=key))
        else:
            known = [*FIELDS, *SCOPES]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}:?" if close else f"known: {', '.join(known)}"
            raise self.error(f"unknown field {name}:", col, hint=hint)


STARTS_OPERAND = {"(", "PHRASE", "WORD", "NOT", "FIELD", "SCOPE"}
_ENDS_OPERAND = {")", "PHRASE", "WORD", "SCOPE"}


@dataclass(frozen=True)
class QueryWarning:
    """Something that parses but is almost surely not what its author meant."""

    message: str
    column: int  # 1-based
    hint: str | None = None


def query_warnings(query: str) -> list[QueryWarning]:
    """Lower-case `and`, `or`, `not` used like operators (between terms; `not` also before
    one): they are searched as words, which is almost never what was meant. For a query that
    parses (`parse_query` first)."""
    tokens = Lexer(query).run()
    warnings = []
    for before, tok, after in zip([None, *tokens], tokens, tokens[1:], strict=False):
        operator = tok.value.upper()
        if tok.kind != "WORD" or operator not in ("AND", "OR", "NOT"):
            continue
        after_term = before is not None and before.kind in _ENDS_OPERAND
        if after.kind in STARTS_OPERAND and (after_term or operator == "NOT"):
            message = f"{tok.value!r} is searched as a word, not as an operator"
            hint = f'operators are in capitals; write "{tok.value}" in quotes to mean the word'
            warnings.append(QueryWarning(f"{message}: did you mean {operator}?", tok.col + 1, hint))
    return warnings
