"""Feed text that tries something, rendered (monitor/digest/render/clean.py and the renderers).
Expected: no bidi controls anywhere in a digest; a link's real host shown and `user@` spoofs
gone; absurd titles and summaries capped; every header one line whatever a rule's title
holds; the window, the "already sent" references and the "more" footer say what they mean.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import jsonschema

from monitor.digest.render import render_email, render_webhook
from monitor.digest.render.clean import SUMMARY_MAX, TITLE_MAX, clean_link, link_host, one_line
from monitor.models import DigestEntry, Receiver, RuleRef, SentBefore, WebhookReceiver
from tests.digest.test_arrange import (
    KOREA,
    QUAKE,
    T0,
    TAIWAN,
    make_digest,
    make_entry,
    story_of,
)

NOW = datetime(2025, 12, 2, 0, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "webhook-schema.json").read_text())
SLACK = Receiver("chat", webhook=WebhookReceiver("https://hooks.example.org/s", format="slack"))
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(raw: bytes) -> tuple[str, str]:
    msg = parse(raw)
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def every_rendering(entries: list[DigestEntry]) -> str:
    """The email (both parts, subject), the JSON body and the Slack body, as one text."""
    digest = make_digest(entries)
    rendered = render_email(digest, NOW)
    text, html = parts(rendered.body)
    hook = render_webhook(digest, NOW).body.decode()
    slack = render_webhook(make_digest(entries, receiver=SLACK), NOW).body.decode()
    return "\n".join([rendered.subject, text, html, json.loads(hook)["subject"], hook, slack])


def test_bidi_controls_are_removed_from_every_part() -> None:
    title = "Invoice for \u202eexe.pdf\u202c and \u2066isolated\u2069 text"
    entry = make_entry(1, title, (TAIWAN,), summary=f"Summary {BIDI} here")
    entry = DigestEntry(1, entry.item, f"Wire{BIDI}", entry.rules, also=((f"X{BIDI}", None),))
    shown = every_rendering([entry])
    assert not any(c in shown for c in BIDI)
    assert "Invoice for exe.pdf and isolated text" in shown and "Summary here" in shown


def test_a_link_shows_the_host_it_really_goes_to() -> None:
    spoof = "https://trusted.example@evil.example/path"
    entry = make_entry(1, "Read this at trusted.example", (TAIWAN,), link=spoof)
    entry = DigestEntry(1, entry.item, "Wire", entry.rules, also=(("Other", spoof),))
    text, html = parts(render_email(make_digest([entry]), NOW).body)
    assert "trusted.example@" not in text + html
    assert "  https://evil.example/path" in text
    assert '<a href="https://evil.example/path"' in html and "(evil.example)</span>" in html
    body = json.loads(render_webhook(make_digest([entry]), NOW).body)
    item = body["groups"][0]["items"][0]
    assert item["link"] == "https://evil.example/path" and item["host"] == "evil.example"
    slack = render_webhook(make_digest([entry], receiver=SLACK), NOW).body.decode()
    assert "trusted.example@" not in slack and "(evil.example)" in slack


def test_story_reports_are_cleaned_in_every_part() -> None:
    # A story's other reports are feed text too: controls out, one line, spoofed links fixed.
    spoof = "https://trusted.example@evil.example/r"
    lead = make_entry(1, "PLA drills", (TAIWAN,))
    other = make_entry(2, f"Drills\n{BIDI}near Kinmen", (TAIWAN,), feed="Ledger", link=spoof)
    other = DigestEntry(2, other.item, f"Led{BIDI}ger", other.rules)  # feed ids are checked
    shown = every_rendering([story_of(lead, other)])
    assert not any(c in shown for c in BIDI)
    assert "trusted.example@" not in shown
    assert "Ledger (en): Drills near Kinmen <https://evil.example/r>" in shown
    assert '"title":"Drills near Kinmen"' in shown


def test_link_cleaning() -> None:
    assert (
        clean_link("https://user:pw@evil.example:8443/a?b#c") == "https://evil.example:8443/a?b#c"
    )
    assert clean_link("javascript:alert(1)") == "javascript:alert(1)"  # shown as text only
    assert clean_link("https://x.example/" + "a" * 3000) is None
    assert clean_link(" \u202ehttps://x.example/\u202c ") == "https://x.example/"
    assert link_host("https://ВЕДОМОСТИ.example/a") == "xn--b1aecntlbyj.example"
    assert link_host("https://WWW.Example.org:8080/") == "www.example.org"
    assert link_host("not a link") is None


def test_huge_titles_and_summaries_are_capped() -> None:
    entry = make_entry(1, "Headline " * 120_000, (TAIWAN,), summary="word " * 200_000)
    rendered = render_email(make_digest([entry]), NOW)
    assert len(rendered.body) < 20_000  # a 1 MB title once made an 842 KB email
    body = json.loads(render_webhook(make_digest([entry]), NOW).body)
    item = body["groups"][0]["items"][0]
    assert len(item["title"]) <= TITLE_MAX and item["title"].endswith("…")
    assert len(item["summary"]) <= SUMMARY_MAX
    assert one_line("a\n\n b\tc ", 10) == "a b c"


def test_every_header_is_one_line_whatever_a_rule_title_holds() -> None:
    # `title: >` in YAML ends in a newline; a subject header cannot hold one.
    folded = RuleRef("strait", "Military pressure\nin the Taiwan Strait\n", "critical")
    headlines = (
        "Destroyers sail north",
        "Live-fire zone declared",
        "Cargo ship boarded",
        "Jets scrambled",
    )
    entries = [make_entry(i, h, (folded,), hours=i) for i, h in enumerate(headlines)]
    rendered = render_email(make_digest(entries), NOW)
    msg = parse(rendered.body)
    # A long subject is folded onto its next line; unfolding gives it back.
    subject = "[monitor] 4 alerts: Military pressure in the Taiwan Strait (4, critical)"
    assert msg["Subject"].strip() == subject == rendered.subject
    text, _ = parts(rendered.body)
    assert "== Military pressure in the Taiwan Strait (4) ==" in text
    slack = json.loads(render_webhook(make_digest(entries, receiver=SLACK), NOW).body)
    assert "\n" not in slack["blocks"][0]["text"]["text"]


def test_the_window_is_the_span_of_the_items() -> None:
    entries = [
        make_entry(1, "PLA drills around Taiwan", (TAIWAN,), hours=1),
        make_entry(2, "Magnitude 7.5 quake off Aomori", (QUAKE,), hours=6),
    ]
    text, _ = parts(render_email(make_digest(entries), NOW).body)
    assert "2 alerts, published 2025-12-01 10:00 JST to 2025-12-01 15:00 JST" in text
    one, _ = parts(render_email(make_digest(entries[:1]), NOW).body)
    assert "1 alert, published 2025-12-01 10:00 JST\n" in one.replace("\r\n", "\n")


def test_the_more_footer_says_when_the_rest_comes() -> None:
    entries = [make_entry(1, "PLA drills around Taiwan", (TAIWAN,))]
    daily = make_digest(entries, truncated=4, schedule="0 7 * * *")  # Asia/Tokyo
    body = json.loads(render_webhook(daily, NOW).body)
    assert body["more"] == (
        "4 more not shown (they come in the next digest, at the next scheduled send, "
        "2025-12-03 07:00 JST); to list them now: monitor digest show d-2025-12-02-asia --left-out"
    )
    now = json.loads(render_webhook(make_digest(entries, truncated=4), NOW).body)
    assert "(they come in the next digest, after the next poll)" in now["more"]


def test_items_sent_before_are_one_line_references_at_the_end() -> None:
    earlier = make_entry(7, "North Korea fires ballistic missiles", (KOREA,), hours=2)
    new = make_entry(1, "PLA drills around Taiwan", (TAIWAN,), hours=5)
    already = (
        SentBefore(earlier, T0 + timedelta(hours=23, minutes=12), "d-earlier"),  # 08:12 JST
        SentBefore(make_entry(8, "Quake", (QUAKE,)), T0 - timedelta(days=2), "d-older"),
    )
    digest = make_digest([new], already=already)
    text, html = parts(render_email(digest, NOW).body)
    text = text.replace("\r\n", "\n")
    section = text.split("== Already sent (2) ==\n\n", 1)[1]
    assert section.startswith(
        "- [HIGH] North Korea fires ballistic missiles: already sent at 08:12\n"
        "- [MEDIUM] Quake: already sent at 2025-11-29 09:00\n"
    )
    assert text.count("North Korea fires ballistic missiles") == 1  # not repeated in full
    assert "Already sent (2)" in html and "already sent at 08:12" in html
    body = json.loads(render_webhook(digest, NOW).body)
    jsonschema.validate(body, SCHEMA)
    assert body["already_sent"][0] == {
        "id": 7,
        "title": "North Korea fires ballistic missiles",
        "link": "https://news.example/7",
        "severity": "high",
        "sent": "2025-12-01T23:12:00Z",
        "digest_id": "d-earlier",
        "note": "already sent at 08:12",
    }
    assert body["subject"] == "[monitor] 1 alert: PLA drills around Taiwan (critical)"
    slack = render_webhook(make_digest([new], receiver=SLACK, already=already), NOW).body
    assert "already sent at 08:12" in slack.decode()
