"""The rule playground's logic: read what was typed (a query, or a whole rule in YAML), and try
it on the stored items of the last N days beside a rule in force.

Reading reuses the rule loader and the query parser (`monitor rules check`): every problem
comes with its line and column. Trying reuses the real matcher as `monitor rules test --since`
runs it (same items: published within the window; same feeds: `rules/feeds.yaml`; regions and
entities tagged afresh with the rules in force when the rule asks for them), so both find the
same items. Nothing here writes: a rule file is never touched, only shown as YAML to paste.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from monitor.errors import ConfigError
from monitor.match.engine import Matcher
from monitor.match.examples import run_rule_tests
from monitor.match.lexer import QuerySyntaxError, query_warnings, render_caret
from monitor.match.nodes import to_string
from monitor.match.query import parse_query

# The loader's reader of one rule mapping, used as `load_rule_file` uses it on a file's rules.
from monitor.match.reader import _Errors, _RuleReader
from monitor.match.rule import Rule
from monitor.match.ruleset import RuleSet
from monitor.yamlfile.check import parse_yaml

SOURCE = "the playground"  # where problems say they are: the text typed, not a file
Kind = Literal["empty", "query", "rule"]
# A line that starts a rule key (`id:`, `- id:`, `rules:`): what tells YAML from a query.
# `title:` is left out: `title: drill` is also a query (the title field).
_RULE_KEY = re.compile(
    r"^\s*(-\s+)?(rules|id|query|score|severity|feeds|labels|tests|enabled|mute_until)\s*:(\s|$)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Problem:
    """An error or warning in what was typed; `source` is the line the column points into."""

    message: str
    line: int | None = None  # 1-based, in the text typed
    column: int | None = None  # 1-based
    source: str | None = None
    hint: str | None = None

    @property
    def caret(self) -> str | None:
        """The line and a `^` under the column, as `monitor rules check` prints them."""
        if self.source is None or self.column is None:
            return None
        return render_caret(self.source, self.column, indent="")

    @property
    def where(self) -> str:
        if self.line is None:
            return f"column {self.column}" if self.column else ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")


@dataclass(frozen=True)
class Parsed:
    """What was typed, read: the rule it stands for (None when it has errors)."""

    kind: Kind
    text: str
    rule: Rule | None = None
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    normalised: str | None = None  # the query in canonical form
    yaml: str = ""  # the rule to paste into a file under rules/alerts/


def kind_of(text: str) -> Kind:
    if not text.strip():
        return "empty"
    return "rule" if _RULE_KEY.search(text) else "query"


def read_input(text: str, ruleset: RuleSet | None, like: Rule | None = None) -> Parsed:
    """Read `text` as a query or a rule (see `kind_of`). `ruleset` gives the known regions
    and entities (None: not checked); `like` is the rule in force whose id, title and
    severity a bare query's YAML takes."""
    text = text.replace("\r\n", "\n")
    kind = kind_of(text)
    if kind == "empty":
        return Parsed("empty", text)
    if kind == "query":
        return _read_query(text, like)
    return _read_rule(text, ruleset)


def _read_query(text: str, like: Rule | None) -> Parsed:
    query = text.strip()
    lines = query.split("\n")
    try:
        tree = parse_query(query)
    except QuerySyntaxError as error:
        line, column = _line_col(query, error.column)
        problem = Problem(error.message, line, column, lines[line - 1], error.hint)
        return Parsed("query", text, problems=(problem,))
    warnings = tuple(
        Problem(w.message, *_located(query, w.column), hint=w.hint) for w in query_warnings(query)
    )
    rule = Rule(
        id=like.id if like else "new-rule",
        title=like.title if like else "New rule",
        severity=like.severity if like else "medium",
        query=query,
        tree=tree,
        path=SOURCE,
    )
    return Parsed("query", text, rule, (), warnings, to_string(tree), query_yaml(rule))


def _line_col(text: str, column: int) -> tuple[int, int]:
    """A 1-based column in the whole text as (line, column), for a query on several lines."""
    before = text[: column - 1]
    return before.count("\n") + 1, column - 1 - (before.rfind("\n") + 1) + 1


def _located(text: str, column: int) -> tuple[int, int, str]:
    line, col = _line_col(text, column)
    return line, col, text.split("\n")[line - 1]


def query_yaml(rule: Rule) -> str:
    """A rule file holding `rule` (id, title, severity, query), ready to paste."""
    assert rule.query is not None
    return (
        "rules:\n"
        f"  - id: {rule.id}\n"
        f"    title: {_quoted(rule.title)}\n"
        f"    severity: {rule.severity}\n"
        f"    query: {_quoted(rule.query)}\n"
    )


def _quoted(value: str) -> str:
    """A YAML scalar for `value`: single quotes (only `'` to double), or a JSON string, which
    YAML reads alike, when it spans lines."""
    if "\n" in value:
        return json.dumps(value, ensure_ascii=False)
    return "'" + value.replace("'", "''") + "'"


def _read_rule(text: str, ruleset: RuleSet | None) -> Parsed:
    lines = text.split("\n")
    try:
        doc = parse_yaml(text, Path(SOURCE))
    except ConfigError as error:
        return Parsed("rule", text, problems=(_problem(error, lines),))
    nodes, shape = _rule_nodes(doc)
    if len(nodes) != 1:
        message = f"expected one rule, found {len(nodes)}"
        hint = "paste one rule: a mapping with id and query, alone or under rules: as - id: ..."
        return Parsed("rule", text, problems=(Problem(message, hint=hint),))
    errors = _Errors(SOURCE)
    known_regions = ruleset.gazetteer.codes if ruleset else None
    known_entities = [e.id for e in ruleset.tagger.entities] if ruleset else None
    rule = _RuleReader(nodes[0], errors, known_regions, known_entities).read()
    if rule is None or errors:
        return Parsed("rule", text, problems=tuple(_problem(e, lines) for e in errors))
    warnings = [
        Problem(w.message.split("\n")[0], w.line, w.column, _at(lines, w.line), w.hint)
        for w in rule.warnings
    ]
    warnings += _example_failures(rule, ruleset)
    normalised = to_string(rule.tree) if rule.tree is not None else None
    return Parsed("rule", text, rule, (), tuple(warnings), normalised, _as_file(text, shape))


def _rule_nodes(doc: object) -> tuple[list[CommentedMap], str]:
    """The rule mappings of a document: `rules: [...]`, a list, or one mapping."""
    if isinstance(doc, CommentedMap) and "rules" in doc:
        seq = doc["rules"]
        found = list(seq) if isinstance(seq, CommentedSeq) else []
        return [n for n in found if isinstance(n, CommentedMap)], "file"
    if isinstance(doc, CommentedSeq):
        return [n for n in doc if isinstance(n, CommentedMap)], "list"
    return ([doc] if isinstance(doc, CommentedMap) else []), "mapping"


def _as_file(text: str, shape: str) -> str:
    """The rule typed, as a file under rules/alerts/ wants it (under `rules:`)."""
    body = text.strip("\n")
    if shape == "file":
        return body + "\n"
    if shape == "list":
        return "rules:\n" + textwrap.indent(textwrap.dedent(body), "  ") + "\n"
    dedented = textwrap.dedent(body)
    return "rules:\n  - " + textwrap.indent(dedented, "    ").removeprefix("    ") + "\n"


def _at(lines: list[str], line: int | None) -> str | None:
    return lines[line - 1] if line is not None and 0 < line <= len(lines) else None


def _problem(error: ConfigError, lines: list[str]) -> Problem:
    # The loader's message for a bad query ends with its own caret: the page draws its own.
    message = error.message.split("\n")[0]
    return Problem(message, error.line, error.column, _at(lines, error.line), error.hint)


def _example_failures(rule: Rule, ruleset: RuleSet | None) -> list[Problem]:
    """The rule's own `tests:` examples that fail, as `monitor rules check` runs them."""
    tag = ruleset.tag if ruleset else None
    tag_all = ruleset.tag_all if ruleset else None
    failures = run_rule_tests([rule], Matcher.compile([rule]), tag, tag_all)
    return [
        Problem(str(f).removeprefix(f"{SOURCE}:{f.example.line or rule.line}: "), f.example.line)
        for f in failures
    ]


def rule_source(rule: Rule, rules_dir: Path) -> str:
    """The text of `rule` in its file (from its `- id:` line to the next rule), under
    `rules:`, to prefill the playground; its query alone when the file cannot be read."""
    fallback = query_yaml(rule) if rule.query is not None else f"rules:\n  - id: {rule.id}\n"
    path = Path(rule.path)
    if rule.line is None or rules_dir.resolve() not in path.resolve().parents:
        return fallback  # only a file under rules/ is shown
    try:
        lines = path.read_text(encoding="utf-8").split("\n")[rule.line - 1 :]
    except (OSError, UnicodeDecodeError):
        return fallback
    # The rule's keys start where its first key does (`  - id:` -> 4); it ends at the next
    # line with text further left.
    column = len(lines[0]) - len(lines[0].lstrip(" -"))
    end = 1
    while end < len(lines) and not _further_left(lines[end], column):
        end += 1
    block = [" " * column + lines[0][column:], *lines[1:end]]
    while block and (not block[-1].strip() or block[-1].lstrip().startswith("#")):
        block.pop()
    return _as_file("\n".join(block), "mapping")


def _further_left(line: str, column: int) -> bool:
    text = line.lstrip(" ")
    return bool(text) and not text.startswith("#") and len(line) - len(text) < column
