"""Alert rule files (`rules/alerts/*.yaml`): load and validate them.

Loading never stops at the first problem: `load_rules` returns the good rules *and* every
error found, each a `ConfigError` naming file, line and column, so `monitor rules check` can
print them all at once. A rule with any error is left out; the others still load. Each rule
mapping is read by `reader.py`; the rules' own examples run in `examples.py`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.errors import ConfigError
from monitor.match.reader import _check_keys, _Errors, _RuleReader
from monitor.match.rule import Rule

# --- files ----------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # so an error column can skip the opening quote
    return yaml


def load_rule_file(
    path: Path, known_regions: Collection[str] | None = None
) -> tuple[list[Rule], list[ConfigError]]:
    """The valid rules of one file and every error in it."""
    errors = _Errors(str(path))
    try:
        doc = _yaml().load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as error:
        mark = error.problem_mark
        where = (mark.line, mark.column) if mark is not None else None
        errors.add(f"not valid YAML: {error.problem}", where)
        return [], errors
    except (YAMLError, OSError, UnicodeDecodeError) as error:
        errors.add(f"cannot read: {error}", None)
        return [], errors
    return _read_document(doc, errors, known_regions), errors


def _read_document(doc: Any, errors: _Errors, known_regions: Collection[str] | None) -> list[Rule]:
    if doc is None:
        return []  # an empty file: nothing to load, nothing wrong
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("rules"), CommentedSeq):
        errors.add(
            "expected a mapping with a list under rules:",
            (0, 0),
            "see the README: rules: - id: ...",
        )
        return []
    _check_keys(doc, ("rules",), "the file", errors)
    rules = []
    for i, node in enumerate(doc["rules"]):
        if not isinstance(node, CommentedMap):
            errors.add("each rule must be a mapping (id, query, ...)", doc["rules"].lc.item(i))
            continue
        rule = _RuleReader(node, errors, known_regions).read()
        if rule is not None:
            rules.append(rule)
    return rules


def load_rules(
    directory: Path, known_regions: Collection[str] | None = None
) -> tuple[list[Rule], list[ConfigError]]:
    """Load every `*.yaml`/`*.yml` in `directory` (the `rules/alerts` folder), in name order.

    `known_regions` are the region codes `region:XX` may use; None skips that check.
    Returns the valid rules and every error, duplicate ids across files included.
    """
    if not directory.is_dir():
        hint = "create it, or point --rules at the right folder"
        return [], [ConfigError("no such rules directory", path=str(directory), hint=hint)]
    rules: list[Rule] = []
    errors: list[ConfigError] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        file_rules, file_errors = load_rule_file(path, known_regions)
        rules.extend(file_rules)
        errors.extend(file_errors)
    return _drop_duplicates(rules, errors), errors


def _drop_duplicates(rules: list[Rule], errors: list[ConfigError]) -> list[Rule]:
    first: dict[str, Rule] = {}
    kept = []
    for rule in rules:
        if rule.id in first:
            other = first[rule.id]
            message = f"duplicate rule id {rule.id!r}: also defined at {other.path}:{other.line}"
            errors.append(
                ConfigError(
                    message, path=rule.path, line=rule.line, hint="ids must be unique across files"
                )
            )
        else:
            first[rule.id] = rule
            kept.append(rule)
    return kept
