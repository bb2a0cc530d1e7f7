"""The alert query language: tokenizer and recursive-descent parser.

Grammar (operators in capitals; precedence NOT > NEAR > AND > OR, adjacency means AND):

    query   := or
    or      := and ("OR" and)*
    and     := near (["AND"] near)*
    near    := unary ("NEAR/n" unary)*
    unary   := "NOT" unary | "-"word | primary
    primary := "(" or ")" | ("title:" | "summary:") primary | "phrase" | word[*]
             | region:XX | feed:ID | tag:NAME | lang:xx

The parser returns `nodes` dataclasses and raises only `QuerySyntaxError`, which knows the
column and renders the query with a caret under the problem. Beyond grammar it rejects what
can never work as the user means it: a query (or an OR branch) that holds only by absence
(`NOT film`), `AND`/`NOT`/scopes inside `NEAR`, fields on scopes, terms with no letters.
`nodes.to_string` prints a canonical query that parses back to the same tree.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from monitor.errors import MonitorError
from monitor.match.nodes import (
    FIELDS,
    And,
    FeedScope,
    Field,
    Lang,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Region,
    Scope,
    Tag,
    Term,
    walk,
)
from monitor.match.textnorm import fold, split_words

SCOPES = ("region", "feed", "tag", "lang")
MAX_NEAR = 1000
_MAX_DEPTH = 64  # parentheses deeper than this are a mistake, and would exhaust the stack


class QuerySyntaxError(MonitorError):
    """A query that does not parse. `column` is 1-based; `render()` shows a caret under it."""

    def __init__(self, message: str, *, query: str, column: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.query = query
        self.column = column

    def render(self, indent: str = "    ") -> str:
        """The query on one line and a caret under the problem (tabs/newlines shown as spaces)."""
        line = re.sub(r"\s", " ", self.query)
        return f"{indent}{line}\n{indent}{' ' * (self.column - 1)}^"

    def __str__(self) -> str:
        return f"column {self.column}: {super().__str__()}\n{self.render()}"


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


class _Lexer:
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


# --- parser ---------------------------------------------------------------------------------

_STARTS_OPERAND = {"(", "PHRASE", "WORD", "NOT", "FIELD", "SCOPE"}


class _Parser:
    def __init__(self, query: str) -> None:
        self.q = query
        self.lexer = _Lexer(query)
        self.toks = self.lexer.run()
        self.pos = 0
        self.depth = 0

    def cur(self) -> Token:
        return self.toks[self.pos]

    def take(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def error(self, message: str, col: int, hint: str | None = None) -> QuerySyntaxError:
        return self.lexer.error(message, col, hint)

    def parse(self) -> Node:
        if self.cur().kind == "EOF":
            raise self.error("empty query", 0)
        node = self.parse_or()
        if self.cur().kind == ")":
            raise self.error("unbalanced ')': no '(' before it", self.cur().col)
        if self.cur().kind != "EOF":  # pragma: no cover - every other token starts an operand
            raise self.error(f"unexpected {self.cur().value}", self.cur().col)
        if not isinstance(node, Or):
            self.check_positive(node, 0)
        return node

    def parse_or(self) -> Node:
        col = self.cur().col
        branches = [self.check_positive(self.parse_and(), col)]
        while self.cur().kind == "OR":
            self.take()
            col = self.cur().col
            branches.append(self.check_positive(self.parse_and(), col))
        return _flat(Or, branches)

    def check_positive(self, node: Node, col: int) -> Node:
        if not can_match(node):
            raise self.error(
                "this part matches only by what is absent: it would match almost everything",
                col,
                hint="combine NOT with a term, e.g. taiwan AND NOT film",
            )
        return node

    def parse_and(self) -> Node:
        parts = [self.parse_near()]
        while self.cur().kind == "AND" or self.cur().kind in _STARTS_OPERAND:
            if self.cur().kind == "AND":
                self.take()
            parts.append(self.parse_near())
        return _flat(And, parts)

    def parse_near(self) -> Node:
        col = self.cur().col
        left = self.parse_unary()
        while self.cur().kind == "NEAR":
            op = self.take()
            n = int(op.extra)
            if not 1 <= n <= MAX_NEAR:
                raise self.error(f"NEAR distance must be 1 to {MAX_NEAR}", op.col)
            right_col = self.cur().col
            right = self.parse_unary()
            self.check_positional(left, col)
            self.check_positional(right, right_col)
            left = Near(n, left, right)
        return left

    def check_positional(self, node: Node, col: int) -> None:
        if not is_positional(node):
            raise self.error(
                "NEAR joins terms, phrases or OR-groups of them",
                col,
                hint="AND, NOT and region:/feed:/tag:/lang: cannot stand inside NEAR",
            )

    def parse_unary(self) -> Node:
        if self.cur().kind == "NOT":
            self.take()
            return Not(self.parse_unary())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.cur()
        if tok.kind == "(":
            return self.parse_group()
        if tok.kind == "FIELD":
            return self.parse_field()
        self.take()
        if tok.kind == "PHRASE":
            return Phrase(tok.value)
        if tok.kind == "WORD":
            return self.make_term(tok)
        if tok.kind == "SCOPE":
            return _scope(tok.extra, tok.value)
        if tok.kind == "EOF":
            last = self.toks[self.pos - 2].value if self.pos >= 2 else ""
            raise self.error(f"expected a term after {last}".rstrip(), tok.col)
        if tok.kind == ")":
            raise self.error("expected a term before ')'", tok.col)
        raise self.error(f"{tok.value} needs a term on both sides", tok.col)

    def parse_group(self) -> Node:
        opening = self.take()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"parentheses nested deeper than {_MAX_DEPTH}", opening.col)
        if self.cur().kind == ")":
            raise self.error("empty parentheses", opening.col)
        node = self.parse_or()
        if self.cur().kind != ")":
            raise self.error("missing ')' to close this '('", opening.col)
        self.take()
        self.depth -= 1
        return node

    def parse_field(self) -> Node:
        tok = self.take()
        child_col = self.cur().col
        child = self.parse_primary()
        if _has_scope(child):
            raise self.error(
                f"{tok.value}: applies to terms and phrases",
                child_col,
                hint="region:, feed:, tag: and lang: describe the item, not a field",
            )
        return Field(tok.value, child)  # type: ignore[arg-type]

    def make_term(self, tok: Token) -> Term:
        text, prefix = tok.value, tok.value.endswith("*")
        if prefix:
            text = text[:-1]
        if "*" in text:
            star = tok.col + text.index("*")
            raise self.error("a wildcard may only end a word", star, hint="write e.g. drill*")
        if not split_words(fold(text)):
            raise self.error(f"{tok.value!r} has no letters or digits to match", tok.col)
        return Term(text, prefix)


def _scope(name: str, value: str) -> Scope:
    if name == "region":
        return Region(value.upper())
    if name == "lang":
        return Lang(value.lower())
    return FeedScope(value) if name == "feed" else Tag(value)


def _flat(cls: type[And] | type[Or], parts: list[Node]) -> Node:
    """Merge nested groups of the same operator: `(a OR b) OR c` is `a OR b OR c`."""
    if len(parts) == 1:
        return parts[0]
    children: list[Node] = []
    for part in parts:
        children.extend(part.children if isinstance(part, cls) else (part,))
    return cls(tuple(children))


def _has_scope(node: Node) -> bool:
    return any(isinstance(n, Region | FeedScope | Tag | Lang) for n in walk(node))


def can_match(node: Node) -> bool:
    """Whether `node` needs something present to hold (`NOT x` alone does not)."""
    if isinstance(node, Not):
        return False
    if isinstance(node, Field):
        return can_match(node.child)
    if isinstance(node, And):
        return any(can_match(c) for c in node.children)
    if isinstance(node, Or):
        return all(can_match(c) for c in node.children)
    return True


def is_positional(node: Node) -> bool:
    """Whether `node` has positions in the text, so NEAR can measure distances to it."""
    if isinstance(node, Term | Phrase | Near):
        return True
    if isinstance(node, Field):
        return is_positional(node.child)
    if isinstance(node, Or):
        return all(is_positional(c) for c in node.children)
    return False


def parse_query(query: str) -> Node:
    """Parse `query` into a tree; raises QuerySyntaxError (and nothing else) on bad input."""
    return _Parser(query).parse()
