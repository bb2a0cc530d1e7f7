"""Entities in the query language and in every output: `entity:` in rules and searches,
`items search --entity`, `rules check` refusing unknown ids, `rules test --json`,
`items show`, and the email and webhook digests. The CLI runs in-process on a real rules
folder, a real feed server and a real SQLite file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import jsonschema
import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.digest.render import render_email, render_webhook
from monitor.match.query import QuerySyntaxError, parse_query
from monitor.models import EntityTag, Receiver, WebhookReceiver
from tests.digest.test_arrange import TAIWAN, make_digest, make_entry
from tests.support.feedserver import FeedServer, serve

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "webhook-schema.json").read_text("utf-8"))

RULES = """\
rules:
  - id: xi-talks
    title: Xi talks
    query: 'entity:xi-jinping'
    tests: {match: ["習近平氏がマクロン氏と会談"], no_match: ["Talks in Paris"]}
  - id: people-in-taiwan
    title: People and Taiwan
    query: 'entity:type:person AND (Taiwan OR 台湾)'
"""
HEADLINES = [
    ("g1", "Xi tells Trump a phone call cannot settle the Taiwan question"),
    ("g2", "TSMC breaks ground on a second plant in Kumamoto"),
    ("g3", "中仏首脳が電話会談　習氏「台湾問題で理解を」とマクロン氏に"),
    ("g4", "Nice weather lifts mobile phone sales"),
]


def rss(entries: list[tuple[str, str]]) -> bytes:
    when = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    items = "".join(
        f"<item><guid>{g}</guid><title>{escape(t)}</title><pubDate>{when}</pubDate></item>"
        for g, t in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def run(rules: Path, db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", str(db), *args])


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    rules, db = tmp_path / "rules", tmp_path / "monitor.db"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "people.yaml").write_text(RULES, encoding="utf-8")
    with FeedServer() as server:
        url = server.add("/wire.xml", serve(rss(HEADLINES)))
        (rules / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n    id: wire\n", "utf-8")
        result = run(rules, db, "poll")
        assert result.exit_code == 0, result.output
        yield rules, db


def search(rules: Path, db: Path, *args: str) -> list[dict[str, object]]:
    result = run(rules, db, "items", "search", "--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def guids(docs: list[dict[str, object]]) -> list[object]:
    return sorted(doc["guid"] for doc in docs)  # type: ignore[type-var]


def test_search_by_entity_option_and_query(polled: tuple[Path, Path]) -> None:
    rules, db = polled
    assert guids(search(rules, db, "--entity", "xi-jinping")) == ["g1", "g3"]
    assert guids(search(rules, db, "entity:xi-jinping")) == ["g1", "g3"]
    assert guids(search(rules, db, "entity:emmanuel-macron", "OR", "entity:tsmc")) == ["g2", "g3"]
    assert guids(search(rules, db, "entity:type:org")) == ["g2"]
    assert guids(search(rules, db, "entity:type:place")) == ["g2"]  # Kumamoto
    assert guids(search(rules, db, "entity:type:person", "Taiwan")) == ["g1"]
    assert guids(search(rules, db, "entity:type:person", "-entity:donald-trump")) == ["g3"]
    assert search(rules, db, "--entity", "no-such-one") == []


def test_search_json_carries_the_entities(polled: tuple[Path, Path]) -> None:
    rules, db = polled
    [doc] = search(rules, db, "--entity", "donald-trump")
    assert doc["entities"] == [
        {"id": "xi-jinping", "kind": "person", "field": "title", "start": 0, "end": 2},
        {"id": "donald-trump", "kind": "person", "field": "title", "start": 9, "end": 14},
    ]
    assert doc["regions"] == ["CN", "TW", "US"]
    [calm] = search(rules, db, "weather")
    assert calm["entities"] == [] and calm["regions"] == []


def test_rules_with_entity_queries_match_at_poll(polled: tuple[Path, Path]) -> None:
    rules, db = polled
    assert guids(search(rules, db, "--rule", "xi-talks")) == ["g1", "g3"]
    assert guids(search(rules, db, "--rule", "people-in-taiwan")) == ["g1", "g3"]


def test_items_show_lists_the_entities(polled: tuple[Path, Path]) -> None:
    rules, db = polled
    [doc] = search(rules, db, "--entity", "tsmc")
    shown = run(rules, db, "items", "show", str(doc["id"]))
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("  entities:"))
    assert line == "  entities:   tsmc (org, title [0:4]), jp-kumamoto (place, title [40:48])"
    as_json = json.loads(run(rules, db, "items", "show", str(doc["id"]), "--json").output)
    assert [e["id"] for e in as_json["entities"]] == ["tsmc", "jp-kumamoto"]


def test_rules_test_json_carries_the_entities(polled: tuple[Path, Path]) -> None:
    rules, db = polled
    result = run(rules, db, "rules", "test", "--json", "--text", "Wang Yi meets Macron in Paris")
    doc = json.loads(result.output)
    assert [(e["id"], e["kind"]) for e in doc["entities"]] == [
        ("wang-yi", "person"),
        ("emmanuel-macron", "person"),
        ("fr-paris", "place"),
    ]
    assert doc["regions"] == ["CN", "FR"]
    text = run(rules, db, "rules", "test", "--text", "Xi meets Macron")
    assert "  entities: xi-jinping, emmanuel-macron" in text.output
    assert "  xi-talks [medium] Xi talks" in text.output


def test_rules_test_items_lines_carry_the_entities(tmp_path: Path) -> None:
    (tmp_path / "alerts").mkdir()
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": 7, "title": "Takaichi visits Yonaguni"}\n', encoding="utf-8")
    result = run(tmp_path, tmp_path / "m.db", "rules", "test", "--items", str(items))
    doc = json.loads(result.output)
    assert [e["id"] for e in doc["entities"]] == ["takaichi-sanae", "jp-yonaguni"]


def test_rules_check_refuses_an_unknown_entity_with_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "a.yaml").write_text(
        "rules:\n  - id: xi\n    query: 'entity:xi-jinpin AND drills'\n", encoding="utf-8"
    )
    result = run(tmp_path, tmp_path / "m.db", "rules", "check")
    assert result.exit_code == 1
    assert "a.yaml:3:" in result.output and "unknown entity xi-jinpin" in result.output
    assert "did you mean 'xi-jinping'?" in result.output


def test_rules_check_knows_entities_of_rules_entities_yaml_and_runs_examples(
    tmp_path: Path,
) -> None:
    (tmp_path / "alerts").mkdir()
    (tmp_path / "entities.yaml").write_text(
        "entities:\n  acme-yard:\n    kind: org\n    names: {en: [Acme Yard]}\n", "utf-8"
    )
    (tmp_path / "alerts" / "a.yaml").write_text(
        "rules:\n  - id: yard\n    query: 'entity:acme-yard'\n"
        "    tests: {match: ['Fire at Acme Yard'], no_match: ['Fire at the yard']}\n"
        "  - id: xi\n    query: 'entity:xi-jinping'\n"
        "    tests: {match: ['习近平会见马克龙'], no_match: ['Xinjiang']}\n",
        encoding="utf-8",
    )
    result = run(tmp_path, tmp_path / "m.db", "rules", "check")
    assert result.exit_code == 0, result.output
    broken = "    tests: {match: ['Fire at the yard']}\n"
    (tmp_path / "alerts" / "b.yaml").write_text(
        "rules:\n  - id: yard2\n    query: 'entity:acme-yard'\n" + broken, encoding="utf-8"
    )
    failed = run(tmp_path, tmp_path / "m.db", "rules", "check")
    assert failed.exit_code == 1 and "rule yard2: expected a match" in failed.output


def test_entity_query_syntax() -> None:
    assert str(parse_query("entity:type:PERSON")) == "EntityScope(id='', kind='person')"
    with pytest.raises(QuerySyntaxError, match="unknown entity type 'people'"):
        parse_query("entity:type:people")
    with pytest.raises(QuerySyntaxError, match="applies to terms and phrases"):
        parse_query("title:entity:xi-jinping")


XI = (
    EntityTag("xi-jinping", "person", "title", 0, 2),
    EntityTag("donald-trump", "person", "title", 9, 14),
)


def entity_digest() -> object:
    entry = make_entry(1, "Xi tells Trump a deal is near", (TAIWAN,), regions=("CN", "US"))
    return make_digest([replace(entry, item=replace(entry.item, entities=XI))])


def test_webhook_json_carries_entities_and_stays_schema_valid() -> None:
    body = json.loads(render_webhook(entity_digest(), datetime.now(UTC)).body)  # type: ignore[arg-type]
    jsonschema.validate(body, SCHEMA)
    item = body["groups"][0]["items"][0]
    assert body["version"] == "1"
    assert item["entities"] == [tag.as_json() for tag in XI]
    bad = json.loads(json.dumps(body))
    bad["groups"][0]["items"][0]["entities"][0]["kind"] = "animal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_email_digest_names_the_entities() -> None:
    rendered = render_email(entity_digest(), datetime.now(UTC))  # type: ignore[arg-type]
    raw = rendered.body.decode("utf-8", "replace")
    assert "Names: Xi Jinping, Donald Trump" in raw


def test_slack_digest_names_the_entities() -> None:
    digest = entity_digest()
    slack = Receiver("chat", webhook=WebhookReceiver("https://hooks.example.org/s", format="slack"))
    body = json.loads(render_webhook(replace(digest, receiver=slack), datetime.now(UTC)).body)  # type: ignore[type-var]
    texts = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert any("_Names:_ Xi Jinping, Donald Trump" in t for t in texts), texts
