"""`monitor rules check` and `monitor rules test`: validate the rule files, and dry-run them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import click

from monitor.cli.common import Paths, open_store, parse_since, pass_paths
from monitor.errors import ConfigError, ConfigErrors

if TYPE_CHECKING:  # the rest is imported by the command that needs it (see cli.common)
    from monitor.cli.preflight import Report
    from monitor.match.rule import Match
    from monitor.match.ruleset import RuleSet
    from monitor.models import Item


@click.group()
def rules() -> None:
    """Check and try the alert rules in rules/alerts/."""


@rules.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: problems and a summary.")
@pass_paths
def rules_check(paths: Paths, as_json: bool) -> None:
    """Validate every file under rules/ and run each rule's tests; exit 1 on any error.

    Checks feeds.yaml, regions.yaml, alerts/*.yaml and channels.yaml; warnings (likely
    mistakes that still load) do not fail the check.
    """
    from monitor.cli.preflight import check_rules_dir

    report = check_rules_dir(paths.rules, datetime.now(UTC).date())
    if as_json:
        doc = {"problems": [p.json() for p in report.problems], "summary": report.summary()}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        show_check(report)
    if report.count("error"):
        sys.exit(1)


def show_check(report: Report) -> None:
    """Problems on stderr, one each; muted rules and the verdict on stdout."""
    for problem in report.problems:
        click.echo(str(problem), err=True)
    for rule in report.muted:
        click.echo(f"muted: rule {rule.id} until {rule.mute_until} ({rule.path}:{rule.line})")
    summary = report.summary()
    warnings = f", {summary['warnings']} warnings" if summary["warnings"] else ""
    if not summary["ok"]:
        errors = f"{summary['errors']} errors, {summary['failing_examples']} failing examples"
        click.echo(errors + warnings, err=True)
        return
    states = [f"{len(summary['disabled'])} disabled", f"{len(summary['muted'])} muted"]
    states = [s for s in states if not s.startswith("0 ")]
    detail = f" ({', '.join(states)})" if states else ""
    click.echo(
        f"ok: {summary['rules']} rules{detail}, {summary['examples']} examples pass{warnings}"
    )


@rules.command("test")
@click.option("--text", help="Try the rules on this text (as an item's title).")
@click.option(
    "--items",
    "items_file",
    type=click.File("r", encoding="utf-8"),
    help='JSON lines {"id", "title", "summary", "feed"?, "lang"?}; "-" for stdin.',
)
@click.option("--since", help="Try the rules on items stored within this long, e.g. 7d.")
@click.option("--rule", "rule_ids", multiple=True, help="Only this rule id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines out.")
@pass_paths
def rules_test(
    paths: Paths,
    text: str | None,
    items_file: TextIO | None,
    since: str | None,
    rule_ids: tuple[str, ...],
    as_json: bool,
) -> None:
    """Dry run: which rules would match, and why. Nothing is stored or sent."""
    from monitor.ingest.feeds import load_feeds
    from monitor.match.ruleset import load_ruleset

    if sum(x is not None for x in (text, items_file, since)) != 1:
        raise click.UsageError("give exactly one of --text, --items or --since")
    ruleset = focus(load_ruleset(paths.rules), rule_ids)
    if items_file is not None:
        for line in jsonl_results(ruleset, items_file):
            click.echo(line)
        return
    feeds = {f.id: f for f in load_feeds(paths.feeds).feeds}
    candidates = [(adhoc_item(text), None)] if text is not None else stored_items(paths, since)
    shown = 0
    for item, story in candidates:
        tagged, matches = ruleset.enrich(item, feeds.get(item.feed_id))
        if matches or text is not None:
            shown += 1
            click.echo(
                json.dumps(result_json(tagged, matches, story), ensure_ascii=False)
                if as_json
                else describe(ruleset, tagged, matches)
            )
    if since is not None and not as_json:
        click.echo(f"{shown} of {len(candidates)} stored items would match", err=True)


def focus(ruleset: RuleSet, rule_ids: Sequence[str]) -> RuleSet:
    """The rule set narrowed to `rule_ids` (all rules when empty)."""
    from monitor.match.ruleset import RuleSet

    if not rule_ids:
        return ruleset
    known = {r.id for r in ruleset.rules}
    unknown = sorted(set(rule_ids) - known)
    if unknown:
        raise click.UsageError(f"no rule with id {', '.join(unknown)}")
    kept = tuple(r for r in ruleset.rules if r.id in rule_ids)
    return RuleSet.compile(kept, ruleset.gazetteer, ruleset.tagger)


def adhoc_item(text: str, *, summary: str = "", feed: str = "", lang: str | None = None) -> Item:
    from monitor.models import Item

    now = datetime.now(UTC)
    return Item(
        feed_id=feed,
        guid="adhoc",
        link=None,
        title=text,
        summary=summary,
        html="",
        author=None,
        lang=lang,
        published=now,
        first_seen=now,
        content_hash="",
    )


def stored_items(paths: Paths, since: str | None) -> list[tuple[Item, int | None]]:
    """The stored items published within `since`, each with its story id (None: none)."""
    with open_store(paths) as store:
        found = store.search(None, since=parse_since(since), limit=1_000_000)
        stories = store.item_stories(s.id for s in found)
    return [(s.item, stories.get(s.id)) for s in found]


def jsonl_results(ruleset: RuleSet, lines: Iterable[str]) -> Iterator[str]:
    """`--items`: one JSON result line per JSON input line (blank lines skipped)."""
    from monitor.models import Feed

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = read_record(line, number)
        item = adhoc_item(
            str(record.get("title", "")),
            summary=str(record.get("summary", "")),
            feed=str(record.get("feed", "")),
            lang=record.get("lang"),
        )
        feed = Feed(id=item.feed_id, url="") if item.feed_id else None
        tagged, matches = ruleset.enrich(item, feed)
        out = {"id": record.get("id"), "rules": [m.rule_id for m in matches]}
        out["regions"] = list(tagged.regions)
        out["entities"] = [tag.as_json() for tag in tagged.entities]
        yield json.dumps(out, ensure_ascii=False)


def read_record(line: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ConfigErrors(
            [ConfigError(f"not JSON: {error.msg}", path="--items", line=number)]
        ) from None
    if not isinstance(record, dict) or "title" not in record:
        raise ConfigErrors(
            [ConfigError('each line must be an object with a "title"', path="--items", line=number)]
        )
    return record


def result_json(item: Item, matches: Sequence[Match], story: int | None = None) -> dict[str, Any]:
    return {
        "feed": item.feed_id or None,
        "guid": item.guid,
        "title": item.title,
        "story": story,
        "regions": list(item.regions),
        "entities": [tag.as_json() for tag in item.entities],
        "matches": [
            {
                "rule": m.rule_id,
                "score": m.score,
                "hits": [
                    {"term": h.term, "field": h.field, "start": h.start, "end": h.end}
                    for h in m.hits
                ],
            }
            for m in matches
        ],
    }


def describe(ruleset: RuleSet, item: Item, matches: Sequence[Match]) -> str:
    """Human output: the item, its regions, then each matching rule with its hits shown."""
    head = f"{item.feed_id + ': ' if item.feed_id else ''}{item.title}"
    lines = [head, f"  regions: {', '.join(item.regions) or '-'}"]
    if item.entities:
        lines.append(f"  entities: {', '.join(dict.fromkeys(t.id for t in item.entities))}")
    if not matches:
        lines.append("  no rule matches")
    for match in matches:
        rule = next(r for r in ruleset.rules if r.id == match.rule_id)
        score = f", score {match.score:g}" if rule.score else ""
        lines.append(f"  {rule.id} [{rule.severity}{score}] {rule.title}")
        for field, text in (("title", item.title), ("summary", item.summary)):
            spans = [(h.start, h.end) for h in match.hits if h.field == field]
            if spans:
                lines.append(f"    {field}: {highlight(text, spans)}")
    return "\n".join(lines)


def highlight(text: str, spans: Sequence[tuple[int, int]], width: int = 160) -> str:
    """Mark hit spans (offsets in the folded text) with [brackets].

    Folding keeps lengths for nearly all news text; where it does not (a ligature, `ß`),
    the offsets cannot be mapped back, so the folded text is shown instead.
    """
    from monitor.match.textnorm import fold

    folded = fold(text)
    source = text if len(folded) == len(text) else folded
    out, last = [], 0
    for start, end in sorted(set(spans)):
        if start < last:
            continue
        out += [source[last:start], "[", source[start:end], "]"]
        last = end
    out.append(source[last:])
    marked = "".join(out)
    first = marked.find("[")
    if len(marked) > width and first > width // 3:
        marked = "…" + marked[first - width // 3 :]
    return marked if len(marked) <= width else marked[: width - 1] + "…"
