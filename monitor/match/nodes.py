"""The query tree: the frozen node values `parse_query` returns, `walk` over them, and the
canonical printer: `to_string` prints a query that parses back to the same tree.

Apart from the parser (`query.py`) so that what only reads trees (the rule values in `rule.py`,
the engine's compiler) depends on these values alone, not on the tokenizer and its errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldName = Literal["title", "summary"]
FIELDS: tuple[FieldName, ...] = ("title", "summary")


@dataclass(frozen=True)
class Term:
    text: str  # as written, without the trailing `*`
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    text: str  # as written, without the quotes


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Near:
    n: int
    left: Node
    right: Node


@dataclass(frozen=True)
class Field:
    name: FieldName
    child: Node


@dataclass(frozen=True)
class Region:
    code: str  # upper case


ENTITY_KINDS = ("person", "org", "place")


@dataclass(frozen=True)
class EntityScope:
    """`entity:xi-jinping` (an entity id), or `entity:type:person` (any entity of a kind)."""

    id: str  # "" when `kind` is given
    kind: str = ""  # person | org | place


@dataclass(frozen=True)
class FeedScope:
    id: str


@dataclass(frozen=True)
class Tag:
    name: str


@dataclass(frozen=True)
class Lang:
    code: str  # lower case; `zh` also matches `zh-TW`


Node = Term | Phrase | And | Or | Not | Near | Field | Region | EntityScope | FeedScope | Tag | Lang
Scope = Region | EntityScope | FeedScope | Tag | Lang


def walk(node: Node) -> list[Node]:
    """`node` and all its descendants, depth first."""
    out = [node]
    if isinstance(node, And | Or):
        for child in node.children:
            out.extend(walk(child))
    elif isinstance(node, Not | Field):
        out.extend(walk(node.child))
    elif isinstance(node, Near):
        out.extend(walk(node.left) + walk(node.right))
    return out


# --- printer --------------------------------------------------------------------------------


def _prec(node: Node) -> int:
    if isinstance(node, Or):
        return 1
    if isinstance(node, And):
        return 2
    if isinstance(node, Near):
        return 3
    return 4 if isinstance(node, Not) else 5


def _wrap(node: Node, parens: bool) -> str:
    text = to_string(node)
    return f"({text})" if parens else text


def to_string(node: Node) -> str:
    """The canonical text of a query tree; `parse_query(to_string(t)) == t`."""
    if isinstance(node, Or):
        return " OR ".join(_wrap(c, _prec(c) <= 1) for c in node.children)
    if isinstance(node, And):
        return " AND ".join(_wrap(c, _prec(c) <= 2) for c in node.children)
    if isinstance(node, Near):
        left, right = (
            _wrap(node.left, _prec(node.left) < 3),
            _wrap(node.right, _prec(node.right) <= 3),
        )
        return f"{left} NEAR/{node.n} {right}"
    if isinstance(node, Not):
        return "NOT " + _wrap(node.child, _prec(node.child) < 4)
    if isinstance(node, Field):
        return f"{node.name}:" + _wrap(node.child, not isinstance(node.child, Term | Phrase))
    if isinstance(node, Term):
        return node.text + ("*" if node.prefix else "")
    if isinstance(node, Phrase):
        return f'"{node.text}"'
    if isinstance(node, Region):
        return f"region:{node.code}"
    if isinstance(node, EntityScope):
        return f"entity:type:{node.kind}" if node.kind else f"entity:{node.id}"
    if isinstance(node, FeedScope):
        return f"feed:{node.id}"
    return f"tag:{node.name}" if isinstance(node, Tag) else f"lang:{node.code}"
