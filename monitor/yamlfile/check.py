"""Tools to validate a YAML file under `rules/` with `file:line:column` in every error.

ruamel.yaml's round-trip mode keeps the position of every node, so a checker can point at
the exact key or value that is wrong. Value converters (`as_*`) are plain functions that
raise `Invalid` without knowing where the value came from; `Checker.value` adds the place.
The same converters check values typed on the command line, where there is no line to name.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import stat
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, ScalarEvent

from monitor.errors import ConfigError
from monitor.yamlfile.duration import format_duration as format_duration  # re-exported
from monitor.yamlfile.duration import parse_duration as parse_duration  # re-exported
from monitor.yamlfile.edit import round_trip_yaml

T = TypeVar("T")
Pos = tuple[int, int] | None  # 1-based (line, column) of a node, when known

_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?")
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20}
_SIZE_UNITS["GiB"] = 2**30


def parse_size(value: int | str) -> int:
    """Bytes from `10485760`, `"512KB"` or `"10MiB"`; ValueError if not a size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"bad size {value!r}: write bytes or a unit (KB, MB, KiB, MiB...)")
    return int(float(match[1]) * _SIZE_UNITS[match[2] or "B"])


class ConfigWarning(ConfigError):
    """A problem worth showing that does not stop the file from loading: never raised, but
    collected and printed by `monitor rules check` (and logged by the service)."""


class Invalid(Exception):
    """A bad value; the caller knows where it is. `index` points into a list value."""

    def __init__(self, message: str, hint: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.message, self.hint, self.index = message, hint, index


def as_text(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"'{what}' must be a non-empty string, got {value!r}", "quote it")
    return value.strip()


_ENV_RE = re.compile(r"[A-Z_][A-Z0-9_]*")


def as_env_name(what: str, value: Any) -> str:
    """The NAME of an environment variable holding a secret (the secret never is in a file)."""
    text = as_text(what, value)
    if not _ENV_RE.fullmatch(text):
        hint = "the NAME of an environment variable: A-Z, 0-9 and '_', e.g. SMTP_PASSWORD"
        raise Invalid(f"'{what}' must name an environment variable, got {text!r}", hint)
    return text


def as_words(what: str, pattern: re.Pattern[str], value: Any) -> tuple[str, ...]:
    """A list of single words (tags, codes) matching `pattern`."""
    if not isinstance(value, list):
        raise Invalid(f"'{what}' must be a list such as [a, b], got {value!r}")
    for index, word in enumerate(value):
        if not isinstance(word, str) or not pattern.fullmatch(word):
            hint = "one word each: no spaces, quotes, ':', ',' or '/'"
            raise Invalid(f"bad entry {word!r} in '{what}'", hint, index)
    return tuple(str(word) for word in value)  # plain str, not ruamel's quoted-string types


def as_bool(what: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"'{what}' must be true or false, got {value!r}")
    return value


def as_int(what: str, minimum: int, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise Invalid(f"'{what}' must be a whole number of at least {minimum}, got {value!r}")
    return int(value)  # plain int, not ruamel's HexInt & co.


def as_duration(what: str, minimum: timedelta, value: Any) -> timedelta:
    # A bare number is refused: `interval: 10` could mean seconds or minutes.
    if not isinstance(value, str):
        raise Invalid(f"'{what}' must be a duration with a unit, got {value!r}", "e.g. 10m")
    try:
        duration = parse_duration(value)
    except ValueError as error:
        raise Invalid(f"'{what}': {error}") from None
    if duration < minimum:
        raise Invalid(f"'{what}' must be at least {format_duration(minimum)}, got {value!r}")
    return duration


def as_seconds(what: str, value: Any) -> float:
    return as_duration(what, timedelta(milliseconds=1), value).total_seconds()


def as_size(what: str, value: Any) -> int:
    try:
        size = parse_size(value)
    except ValueError as error:
        raise Invalid(f"'{what}': {error}") from None
    if size < 1024:
        raise Invalid(f"'{what}' must be at least 1KiB, got {value!r}")
    return size


def key_pos(node: CommentedMap, key: Any) -> Pos:
    line, column = node.lc.key(key)
    return line + 1, column + 1


def item_pos(seq: CommentedSeq, index: int) -> Pos:
    line, column = seq.lc.item(index)
    return line + 1, column + 1


def value_pos(node: CommentedMap, key: Any, index: int | None = None) -> Pos:
    value = node[key]
    if isinstance(value, CommentedSeq) and index is not None:
        return item_pos(value, index)
    if value is None:  # ruamel places an empty value on the next token: point at the key
        return key_pos(node, key)
    line, column = node.lc.value(key)
    return line + 1, column + 1


class Checker:
    """Checks one parsed document; every failure names the file, line and column."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, pos: Pos, hint: str | None = None) -> NoReturn:
        line, column = pos or (None, None)
        raise ConfigError(message, path=str(self.path), line=line, column=column, hint=hint)

    def keys(self, node: CommentedMap, known: tuple[str, ...], where: str) -> None:
        """No silent defaults for typos: an unknown key is an error naming the closest one."""
        for key in node:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                message = f"unknown key {str(key)!r} in {where}"
                message += f"; did you mean {close[0]!r}?" if close else ""
                self.fail(message, key_pos(node, key), hint="known keys: " + ", ".join(known))

    def mapping(self, node: Any, pos: Pos, what: str) -> CommentedMap:
        if not isinstance(node, CommentedMap):
            self.fail(f"{what} must be a mapping of 'key: value' lines", pos)
        return node

    def value(self, node: CommentedMap, key: str, convert: Callable[[Any], T], default: T) -> T:
        if key not in node:
            return default
        try:
            return convert(node[key])
        except Invalid as error:
            self.fail(error.message, value_pos(node, key, error.index), error.hint)


def read_text(path: Path) -> str:
    """The file's text. Only a regular file is read: opening a FIFO or a device would block
    the service, so it is refused with an error instead (checked on the open file, no race).
    Bytes that are not UTF-8 are reported at their line and column."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO opens at once
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror}", path=str(path)) from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            hint = "replace it with a plain YAML file"
            raise ConfigError("not a regular file", path=str(path), hint=hint)
        data = file.read()
    return decode_utf8(data, path)


def decode_utf8(data: bytes, path: Path) -> str:
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[line_start : error.start].decode("utf-8", "replace")) + 1
        byte = data[error.start : error.start + 1].hex()
        message = f"the file is not UTF-8 text: byte 0x{byte} cannot be decoded here"
        hint = "save the file as UTF-8"
        raise ConfigError(message, path=str(path), line=line, column=column, hint=hint) from None


def parse_yaml(text: str, path: Path) -> Any:
    """The round-trip tree of `text`; a syntax error names the place ruamel points at, and so
    does a document nested deeper than `MAX_DEPTH` (ruamel composes recursively: a few hundred
    levels would exhaust the stack)."""
    deep: Pos = None
    if _may_be_deep(text) and (deep := _deep_event(text)) is not None:
        # Found on the flat event stream before composing: composing a file nested a
        # thousand deep recurses to Python's limit first, which costs seconds.
        Checker(path).fail(_DEPTH_MESSAGE, deep, _DEPTH_HINT)
    try:
        doc = round_trip_yaml().load(text)
    except RecursionError:  # leave the except block first: its traceback is huge
        doc, too_deep = None, True
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else None
        Checker(path).fail(f"invalid YAML: {error.problem or error.context}", where)
    except YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", path=str(path)) from None
    except ValueError as error:  # ruamel builds a date from `2025-12-32` and fails
        hint = "write a real date, or quote the value if it is not meant as one"
        Checker(path).fail(f"invalid date: {error}", _bad_date(text), hint)
    else:
        deep = _deep_node(doc)
        too_deep = deep is not None
    if too_deep:
        Checker(path).fail(_DEPTH_MESSAGE, deep or _deep_event(text), _DEPTH_HINT)
    return doc


MAX_DEPTH = 50  # the formats need under ten levels; far deeper is a mistake or an attack
_DEPTH_MESSAGE = f"the YAML is nested deeper than {MAX_DEPTH} levels here"
_DEPTH_HINT = "flatten it: no file under rules/ needs more than a few levels"


_BRACKETS = re.compile(r"[\[\]{}]")
_BLOCK_PREFIX = re.compile(r"^[ \-?:]*", re.MULTILINE)


def _may_be_deep(text: str) -> bool:
    """A cheap bound: block nesting needs at least one column of indent (or `- `) per level,
    flow nesting one bracket per level, so when neither can reach `MAX_DEPTH` the file cannot
    be too deep. Brackets inside quoted text only make the bound looser, never wrong."""
    flow = deepest = 0
    for bracket in _BRACKETS.finditer(text):
        flow += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, flow)
    block = max((len(m.group()) for m in _BLOCK_PREFIX.finditer(text)), default=0)
    return deepest + block >= MAX_DEPTH


def _deep_event(text: str) -> Pos:
    """Where the parser's events (a flat stream, no recursion) first go too deep."""
    depth = 0
    try:
        for event in round_trip_yaml().parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1, event.start_mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        pass
    return None


_DATE_RE = re.compile(r"(\d{4})-(\d\d?)-(\d\d?)(?:$|[Tt ])")


def _bad_date(text: str) -> Pos:
    """Where the first unquoted scalar shaped like a date is not one."""
    for event in round_trip_yaml().parse(text):
        match = _DATE_RE.match(event.value) if isinstance(event, ScalarEvent) else None
        if match and event.style is None:
            try:
                date(*map(int, match.groups()))
            except ValueError:
                return event.start_mark.line + 1, event.start_mark.column + 1
    return None


def _deep_node(doc: Any) -> Pos:
    """The place of the first mapping or list deeper than `MAX_DEPTH`, walked without
    recursion. A node shared by aliases is walked again only when reached deeper than before,
    so a tree of aliases costs at most `MAX_DEPTH` visits per node, and a cycle ends here."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    deepest: dict[int, int] = {}
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, CommentedMap | CommentedSeq) or deepest.get(id(node), 0) >= depth:
            continue
        if depth > MAX_DEPTH:
            return node.lc.line + 1, node.lc.col + 1
        deepest[id(node)] = depth
        children = node.values() if isinstance(node, CommentedMap) else node
        stack.extend((child, depth + 1) for child in children)
    return None


def as_choice(what: str, choices: tuple[str, ...], value: Any) -> str:
    """One of `choices`, with the closest one suggested for a typo."""
    if not isinstance(value, str) or value not in choices:
        close = (
            difflib.get_close_matches(str(value), choices, n=1) if isinstance(value, str) else []
        )
        message = f"'{what}' must be one of {', '.join(choices)}, got {value!r}"
        raise Invalid(message + (f"; did you mean {close[0]!r}?" if close else ""))
    return str(value)
