"""Rendering (monitor/digest/render/): hand-made digests (tests/digest/test_arrange.py builds
them) to bytes.
Expected: an email that parses back with both parts, CJK intact, escaped feed text and only
http(s) links; a deterministic Message-ID, boundary and body; a JSON body valid against
docs/webhook-schema.json; a Slack body with `&<>` escaped."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jsonschema

from monitor.digest.render import render_email, render_webhook
from monitor.models import Receiver, WebhookReceiver
from tests.digest.test_arrange import KOREA, QUAKE, TAIWAN, make_digest, make_entry, sample

NOW = datetime(2025, 12, 2, 0, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "webhook-schema.json").read_text())
SLACK = Receiver("chat", webhook=WebhookReceiver("https://hooks.example.org/s", format="slack"))


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def cjk_digest() -> Any:
    return make_digest(
        [
            make_entry(
                1, "中国軍、台湾周辺で大規模演習", (TAIWAN,), regions=("CN", "TW"), lang="ja"
            ),
            make_entry(2, "북한, 동해상으로 탄도미사일 발사", (KOREA,), hours=1, lang="ko"),
            make_entry(3, "臺灣海峽 共軍聯合演習", (QUAKE,), hours=2, lang="zh-tw"),
        ]
    )


def test_email_parses_back_with_both_parts_and_headers() -> None:
    rendered = render_email(make_digest(sample(), truncated=7), NOW)
    msg = parse(rendered.body)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == "<d-2025-12-02-asia@monitor>"
    assert msg["From"] == "monitor@example.org" and msg["To"] == "desk@example.org"
    assert msg["Subject"] == rendered.subject
    assert msg["Date"] == "Tue, 02 Dec 2025 00:00:00 +0000"
    text, html = parts(msg)
    assert "[CRITICAL] PLA drills around Taiwan" in text
    assert "Asia Wire · 2025-12-01 11:00 JST · CN, TW" in text  # the route's timezone
    assert "Matched: Taiwan Strait military pressure (critical): PLA" in text
    assert ">CRITICAL</span>" in html and "#b00020" in html  # colour AND word
    hint = "7 more not shown (they come in the next digest, after the next poll); "
    command = "monitor digest show d-2025-12-02-asia --left-out"
    assert hint + "to list them now: " + command in text and command in html
    assert "never shown" not in text + html  # item.html is never embedded


def test_email_keeps_japanese_chinese_korean_in_subject_and_body() -> None:
    rendered = render_email(cjk_digest(), NOW)
    assert rendered.body.isascii()  # RFC 2047 headers, base64/QP bodies: any server carries it
    msg = parse(rendered.body)
    assert msg["Subject"] == rendered.subject
    text, html = parts(msg)
    for title in (
        "中国軍、台湾周辺で大規模演習",
        "북한, 동해상으로 탄도미사일 발사",
        "臺灣海峽 共軍聯合演習",
    ):
        assert title in text and title in html


def test_email_cc_and_a_cjk_rule_title_in_the_subject() -> None:
    rule = TAIWAN.__class__("tw", "台湾海峡の軍事的圧力", "critical")
    digest = make_digest([make_entry(1, "演習", (rule,))])
    cc_receiver = digest.receiver.__class__(
        "desk",
        email=digest.receiver.email.__class__(  # type: ignore[union-attr]
            ("a@example.org", "b@example.org"),
            "monitor@example.org",
            digest.receiver.email.smtp,  # type: ignore[union-attr]
            cc=("boss@example.org",),
        ),
    )
    msg = parse(render_email(make_digest(list(digest.entries), receiver=cc_receiver), NOW).body)
    assert msg["Subject"] == "[monitor] 1 alert: 演習 (critical)"
    assert msg["To"] == "a@example.org, b@example.org" and msg["Cc"] == "boss@example.org"


def test_email_is_deterministic_boundary_included() -> None:
    first, second = render_email(cjk_digest(), NOW), render_email(cjk_digest(), NOW)
    assert first.body == second.body
    assert b'boundary="=_monitor_' in first.body


def test_feed_text_is_escaped_and_only_http_links_are_hrefs() -> None:
    evil = make_entry(
        1,
        "<script>alert(1)</script> Tom & Jerry",
        (TAIWAN,),
        summary='<img src="https://track.example/p.gif"> AT&T',
        link="javascript:alert(1)",
    )
    evil = evil.__class__(1, evil.item, 'Feed "<b>"', evil.rules, also=(("Other", "ftp://x"),))
    _, html = parts(parse(render_email(make_digest([evil]), NOW).body))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Tom &amp; Jerry" in html
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert "&lt;img src=" in html and "AT&amp;T" in html
    assert 'href="javascript' not in html and "javascript:alert(1)" in html  # shown as text
    assert 'href="ftp' not in html and "Other (ftp://x)" in html
    assert "Feed &quot;&lt;b&gt;&quot;" in html


def test_also_reported_by_links() -> None:
    also = (("The Pacific Ledger", "https://pacificledger.example/a"), ("東都新報", None))
    entry = make_entry(1, "Quake", (QUAKE,))
    entry = entry.__class__(1, entry.item, "Asia Wire", entry.rules, also=also)
    text, html = parts(parse(render_email(make_digest([entry]), NOW).body))
    assert (
        "Also reported by: The Pacific Ledger <https://pacificledger.example/a>; 東都新報" in text
    )
    assert '<a href="https://pacificledger.example/a" style="color:#1a5276">The Pacific' in html


def test_empty_digest_renders() -> None:
    text, html = parts(parse(render_email(make_digest([]), NOW).body))
    assert "No new alerts." in text and "No new alerts." in html


def test_webhook_json_matches_schema_and_content() -> None:
    rendered = render_webhook(make_digest(sample(), truncated=3), NOW)
    assert rendered.content_type == "application/json" and rendered.kind == "webhook"
    body = json.loads(rendered.body)
    jsonschema.validate(body, SCHEMA)
    assert body["version"] == "1" and body["type"] == "monitor.digest"
    assert body["digest_id"] == "d-2025-12-02-asia" and body["route"] == "asia"
    # The span of the items' published times, first to last.
    assert body["window"] == {"start": "2025-12-01T01:00:00Z", "end": "2025-12-01T06:00:00Z"}
    assert [g["key"] for g in body["groups"]] == [
        "rule:taiwan-strait",
        "rule:korea-missiles",
        "rule:asia-quakes",
    ]
    first = body["groups"][0]["items"][0]
    assert first["id"] == 5 and first["severity"] == "critical"
    assert first["rules"][1] == {
        "id": "taiwan-strait",
        "title": "Taiwan Strait military pressure",
        "severity": "critical",
        "terms": ["PLA"],
    }
    assert body["truncated"] == 3 and "monitor digest show" in body["more"]
    assert first["host"] == "news.example" and body["already_sent"] == []


def test_webhook_json_is_deterministic_utf8_and_schema_valid_when_empty() -> None:
    first = render_webhook(cjk_digest(), NOW).body
    assert first == render_webhook(cjk_digest(), NOW).body
    assert "北朝鮮".encode() not in first and "中国軍".encode() in first  # raw UTF-8
    jsonschema.validate(json.loads(render_webhook(make_digest([]), NOW).body), SCHEMA)


def test_slack_body_escapes_and_links() -> None:
    entry = make_entry(1, "<!channel> Tom & Jerry | x", (TAIWAN,), link="https://n.example/1")
    body = json.loads(render_webhook(make_digest([entry], receiver=SLACK), NOW).body)
    assert body["text"].startswith("[monitor] 1 alert")
    texts = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert "<https://n.example/1|&lt;!channel&gt; Tom &amp; Jerry ¦ x>" in texts[1]
    assert "*CRITICAL*" in texts[1]


def test_slack_body_stays_within_block_limit() -> None:
    entries = [make_entry(i, f"Headline{i} about topic{i}", (TAIWAN,), hours=i) for i in range(80)]
    body = json.loads(render_webhook(make_digest(entries, receiver=SLACK, truncated=5), NOW).body)
    assert len(body["blocks"]) == 50
    more = body["blocks"][-1]["elements"][0]["text"]
    assert more.startswith("33 more entries did not fit") and "5 more not shown" in more
