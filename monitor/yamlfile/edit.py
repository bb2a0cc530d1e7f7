"""Edit one list of a block-style YAML file by splicing lines, and write files atomically.

Re-dumping a ruamel round-trip tree keeps comments but not always where the user put them
(a comment before an item hangs off the item above it, and goes away with that item), so the
CLI edits text instead: an item is the lines from its `-` down to its last non-comment line;
the comment lines directly above it (same column, no blank line between) belong to it too. A
comment after a blank line, or after the last item, belongs to the list and is never removed.

The functions return None when the layout is not one they can splice (a flow-style list, a
`-` alone on its line); the caller then falls back to editing the tree. Callers must load the
result again to check it: splicing trusts indentation, not a YAML parser.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.util import load_yaml_guess_indent

NEW_DASH_COLUMN = 2  # `feeds:` then `  - url: ...`: the layout of the example file
NEW_KEY_COLUMN = 4


@dataclass(frozen=True)
class _Span:
    """Lines [start, end) of one list item (0-based), its `-` column and its keys' column."""

    start: int
    end: int
    dash: int
    key: int


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _item_span(lines: list[str], seq: CommentedSeq, index: int) -> _Span | None:
    line, key = seq.lc.item(index)
    head = lines[line][:key] if line < len(lines) else ""
    if seq.fa.flow_style() or not re.fullmatch(r" *- +", head):
        return None
    dash = head.index("-")
    end = line + 1
    while end < len(lines) and (_is_filler(lines[end]) or _indent(lines[end]) > dash):
        end += 1
    while _is_filler(lines[end - 1]):  # trailing comments introduce what follows
        end -= 1
    return _Span(line, end, dash, key)


def _leading_comments(lines: list[str], span: _Span) -> int:
    """The first line of the comment block glued to the item (its own start if none)."""
    start = span.start
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        if _indent(lines[start - 1]) != span.dash:
            break
        start -= 1
    return start


def _render(items: list[CommentedMap], dash: int, key: int) -> list[str]:
    """The lines of `items` as list items with their `-` at column `dash`, keys at `key`.

    An item of plain words, URLs, flags and flow lists of words is written directly; the
    others go through ruamel's emitter, many in one dump (an emitter per item cost 4 s for
    10,000 feeds). Either way the caller loads the result again to check it."""
    lines: list[str] = []
    pending: list[CommentedMap] = []  # items for the emitter, in order
    for item in items:
        direct = _direct(item, dash, key)
        if direct is None:
            pending.append(item)
            continue
        lines += _emitted(pending, dash, key) + direct
        pending = []
    return lines + _emitted(pending, dash, key)


_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = VersionedResolver()
# A value that needs no quotes, conservatively: starts with a word character or `/`, no
# `: ` or ` #` inside (which would end it or start a comment), no trailing `:`, printable.
_PLAIN = re.compile(r"[\w/](?:[^\s:#]|:(?=\S)|#|[ ](?![\s#]))*(?<![\s:])")
_PLAIN_KEY = re.compile(r"[a-z_]+")


def _direct(item: CommentedMap, dash: int, key: int) -> list[str] | None:
    """The lines of `item` written without the emitter, or None when a value needs quoting
    or a layout the emitter knows better."""
    lines = []
    for name, value in item.items():
        text = _direct_value(value)
        if text is None or not isinstance(name, str) or not _PLAIN_KEY.fullmatch(name):
            return None
        lines.append(f"{name}: {text}\n")
    if not lines:
        return None
    first = " " * dash + "-" + " " * (key - dash - 1) + lines[0]
    return [first] + [" " * key + line for line in lines[1:]]


def _direct_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, CommentedSeq) and value.fa.flow_style():
        words = [_plain(word, flow=True) for word in value]
        return None if None in words else "[" + ", ".join(map(str, words)) + "]"
    return _plain(value, flow=False)


def _plain(value: Any, *, flow: bool) -> str | None:
    """`value` as a plain scalar that loads back as the same string, or None."""
    if not isinstance(value, str) or not value.isprintable() or not _PLAIN.fullmatch(value):
        return None
    if flow and any(c in value for c in ",[]{}"):
        return None
    if str(_RESOLVER.resolve(ScalarNode, value, (True, False))) != _STR_TAG:
        return None  # `true`, `1.5`, `2025-01-01`, `null`: would load as another type
    return value


def _emitted(items: list[CommentedMap], dash: int, key: int) -> list[str]:
    """`_render` by ruamel's emitter: one dump of them all as a list, moved to the columns."""
    if not items:
        return []
    buffer = StringIO()
    round_trip_yaml().dump(CommentedSeq(items), buffer)
    body = buffer.getvalue().splitlines(keepends=True)
    dash_head, key_head = " " * dash + "-" + " " * (key - dash - 1), " " * key
    lines = []
    for line in body:
        if line.startswith("- "):
            lines.append(dash_head + line[2:])
        elif line.startswith("  ") or not line.strip():
            lines.append(key_head + line[2:] if line.strip() else line)
        else:  # a layout not foreseen: one emitter per item, as before
            return [line for item in items for line in _render_one(item, dash, key)]
    return lines


def _render_one(item: CommentedMap, dash: int, key: int) -> list[str]:
    buffer = StringIO()
    round_trip_yaml().dump(item, buffer)
    body = buffer.getvalue().splitlines(keepends=True)
    first = " " * dash + "-" + " " * (key - dash - 1) + body[0]
    return [first] + [" " * key + line if line.strip() else line for line in body[1:]]


def round_trip_yaml() -> YAML:
    """The one YAML configuration of the rules files: round trip, quotes kept."""
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never re-wrap a long title or URL
    yaml.preserve_quotes = True
    return yaml


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def remove_item(text: str, seq: CommentedSeq, index: int) -> str | None:
    """`text` without item `index` of `seq` (a list loaded from `text`) and its comments."""
    lines = _lines(text)
    span = _item_span(lines, seq, index)
    if span is None:
        return None
    return "".join(lines[: _leading_comments(lines, span)] + lines[span.end :])


def append_items(text: str, doc: Any, key: str, items: list[CommentedMap]) -> str | None:
    """`text` with `items` added at the end of the top-level list `key` (created if absent)."""
    lines = _lines(text)
    seq = doc.get(key) if isinstance(doc, CommentedMap) else None
    if isinstance(seq, CommentedSeq) and len(seq) > 0:
        span = _item_span(lines, seq, len(seq) - 1)
        if span is None:
            return None
        new = _render(items, span.dash, span.key)
        return "".join(lines[: span.end] + new + lines[span.end :])
    new = _render(items, NEW_DASH_COLUMN, NEW_KEY_COLUMN)
    if doc is None or (isinstance(doc, CommentedMap) and key not in doc):
        return "".join([*lines, f"{key}:\n", *new])
    return _fill_empty_list(lines, doc, key, new)


def _fill_empty_list(lines: list[str], doc: Any, key: str, new: list[str]) -> str | None:
    """Turn `key:`, `key: []` or `key: ~` (at column 0) into a block list of the `new` lines."""
    if not isinstance(doc, CommentedMap) or doc[key] not in (None, []):
        return None
    line, column = doc.lc.key(key)
    match = re.fullmatch(rf"{re.escape(key)}:\s*(?:\[\s*\]|~|null)?\s*(#.*)?\n", lines[line])
    if column != 0 or not match:
        return None
    lines[line] = f"{key}: {match[1]}\n" if match[1] else f"{key}:\n"
    return "".join(lines[: line + 1] + new + lines[line + 1 :])


def dump(doc: Any, original: str) -> str:
    """The whole tree dumped with the indentation `original` uses (the fallback path)."""
    _, sequence, offset = load_yaml_guess_indent(original)
    nested = [_indent(line) for line in original.splitlines() if not _is_filler(line)]
    mapping = min((n for n in nested if n > 0), default=2)
    yaml = round_trip_yaml()
    yaml.indent(mapping=mapping, sequence=sequence or 4, offset=offset or 2)
    buffer = StringIO()
    yaml.dump(doc, buffer)
    return buffer.getvalue()


def lock_path(path: Path) -> Path:
    """The lock file of `path`: hidden beside it (`rules/.feeds.yaml.lock`), so it is never
    taken for a rules file (those end in .yaml)."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive edit lock of `path` (flock on its lock file) inside the block.

    Every command that edits a file under `rules/` takes it around read-check-write, so two
    edits made at once both land instead of the second silently replacing the first. The
    lock goes with the process, even after a crash; the lock file itself stays (harmless).
    Raises OSError when the lock file cannot be created (a read-only folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits: another edit holds it for milliseconds
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` by `text` in one step: a reader (the running service) sees the old file
    or the new one, never half of either. Raises OSError; the old file is then untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
