"""The alert query language: its recursive-descent parser (the tokenizer is in `lexer`).

Grammar (operators in capitals; precedence NOT > NEAR > AND > OR, adjacency means AND):

    query   := or
    or      := and ("OR" and)*
    and     := near (["AND"] near)*
    near    := unary ("NEAR/n" unary)*
    unary   := "NOT" unary | "-"word | primary
    primary := "(" or ")" | ("title:" | "summary:") primary | "phrase" | word[*]
             | region:XX | entity:ID | entity:type:KIND | feed:ID | tag:NAME | lang:xx

The parser returns `nodes` dataclasses and raises only `QuerySyntaxError`, which knows the
column and renders the query with a caret under the problem. Beyond grammar it rejects what
can never work as the user means it: a query (or an OR branch) that holds only by absence
(`NOT film`), `AND`/`NOT`/scopes inside `NEAR`, fields on scopes, terms with no letters.
`nodes.to_string` prints a canonical query that parses back to the same tree.
"""

from __future__ import annotations

from monitor.match.lexer import (
    STARTS_OPERAND,
    Lexer,
    QuerySyntaxError,
    Token,
)
from monitor.match.nodes import (
    ENTITY_KINDS,
    And,
    EntityScope,
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

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NEAR",
    "MAX_TERMS",
    "QuerySyntaxError",  # raised here, defined with the tokenizer
    "can_match",
    "is_positional",
    "parse_query",
]

MAX_NEAR = 1000
# Limits far above any real alert query. Beyond them a query is a mistake (or an attack): a
# deep one would exhaust the stack of every recursive walk of the tree, a huge one would take
# seconds and gigabytes to compile into the one automaton shared by all rules.
MAX_DEPTH = 50  # nested groups, NOT, fields and NEAR chains
MAX_LENGTH = 10_000  # characters
MAX_TERMS = 1_000  # words, phrases and region:/feed:/tag:/lang: scopes


# --- parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.q = query
        self.lexer = Lexer(query)
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
        terms = [t for t in self.toks if t.kind in ("WORD", "PHRASE", "SCOPE")]
        if len(terms) > MAX_TERMS:
            hint = "split it into several rules, or use a score with weighted terms"
            raise self.error(f"more than {MAX_TERMS:,} terms", terms[MAX_TERMS].col, hint)
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
        while self.cur().kind == "AND" or self.cur().kind in STARTS_OPERAND:
            if self.cur().kind == "AND":
                self.take()
            parts.append(self.parse_near())
        return _flat(And, parts)

    def enter(self, col: int) -> None:
        """One level deeper (group, NOT, field, NEAR); the caller calls `leave`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            hint = "simplify it: NOT NOT x is x, and ((x)) is x"
            raise self.error(f"the query is nested deeper than {MAX_DEPTH} levels", col, hint)

    def leave(self, levels: int = 1) -> None:
        self.depth -= levels

    def parse_near(self) -> Node:
        col = self.cur().col
        left = self.parse_unary()
        chain = 0  # `a NEAR/1 b NEAR/1 c` nests to the left: each NEAR is a level
        while self.cur().kind == "NEAR":
            op = self.take()
            self.enter(op.col)
            chain += 1
            n = int(op.extra)
            if not 1 <= n <= MAX_NEAR:
                raise self.error(f"NEAR distance must be 1 to {MAX_NEAR}", op.col)
            right_col = self.cur().col
            right = self.parse_unary()
            self.check_positional(left, col)
            self.check_positional(right, right_col)
            left = Near(n, left, right)
        self.leave(chain)
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
            self.enter(self.take().col)
            node = Not(self.parse_unary())
            self.leave()
            return node
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
            if tok.extra == "entity":
                return self.make_entity(tok)
            return _scope(tok.extra, tok.value)
        if tok.kind == "EOF":
            last = self.toks[self.pos - 2].value if self.pos >= 2 else ""
            raise self.error(f"expected a term after {last}".rstrip(), tok.col)
        if tok.kind == ")":
            raise self.error("expected a term before ')'", tok.col)
        raise self.error(f"{tok.value} needs a term on both sides", tok.col)

    def parse_group(self) -> Node:
        opening = self.take()
        self.enter(opening.col)
        if self.cur().kind == ")":
            raise self.error("empty parentheses", opening.col)
        node = self.parse_or()
        if self.cur().kind != ")":
            raise self.error("missing ')' to close this '('", opening.col)
        self.take()
        self.leave()
        return node

    def parse_field(self) -> Node:
        tok = self.take()
        self.enter(tok.col)
        child_col = self.cur().col
        child = self.parse_primary()
        self.leave()
        if _has_scope(child):
            raise self.error(
                f"{tok.value}: applies to terms and phrases",
                child_col,
                hint="region:, entity:, feed:, tag: and lang: describe the item, not a field",
            )
        return Field(tok.value, child)  # type: ignore[arg-type]

    def make_entity(self, tok: Token) -> EntityScope:
        value = tok.value.lower()
        if not value.startswith("type:"):
            return EntityScope(value)
        kind = value[len("type:") :]
        if kind not in ENTITY_KINDS:
            hint = "write entity:type:person, entity:type:org or entity:type:place"
            raise self.error(
                f"unknown entity type {kind!r}", tok.col + len("entity:type:"), hint=hint
            )
        return EntityScope("", kind)

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
    return any(isinstance(n, Region | EntityScope | FeedScope | Tag | Lang) for n in walk(node))


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
    if len(query) > MAX_LENGTH:
        hint = "split it into several rules, or use a score with weighted terms"
        raise QuerySyntaxError(
            f"the query is longer than {MAX_LENGTH:,} characters",
            query=query,
            column=MAX_LENGTH + 1,
            hint=hint,
        )
    return _Parser(query).parse()
