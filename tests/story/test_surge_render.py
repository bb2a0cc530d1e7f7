"""Surge alerts rendered: feed text escaped in the HTML and in Slack's mrkdwn, bytes that do not
change between renders (a retry resends the same), and the why in the subject."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from monitor.digest.render.email import email_part
from monitor.digest.render.surge import SurgeAlert, render_surge
from monitor.models import (
    DigestEntry,
    EmailReceiver,
    Item,
    Receiver,
    Route,
    RuleRef,
    SmtpServer,
    WebhookReceiver,
)
from monitor.story.surge import Surge

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = "Drills <script>alert(1)</script> & <https://evil.example|click>"


def alert(receiver: Receiver) -> SurgeAlert:
    item = Item(
        feed_id="wire", guid="g", link="https://news.example.org/a", title=HOSTILE,
        summary="s", html="", author=None, lang="en", published=NOW, first_seen=NOW,
        content_hash="h",
    )  # fmt: skip
    entry = DigestEntry(1, item, "Wire", (RuleRef("strait", "Strait", "high"),))
    surge = Surge("story", "story:4", "3 outlets in 2 languages within 12 min", NOW, (1,))
    return SurgeAlert("id-1", Route("r", receiver.id), receiver, 9, surge, HOSTILE, (entry,))


def test_email_escapes_feed_text_and_is_stable() -> None:
    mail = Receiver(
        "desk", email=EmailReceiver(("d@example.org",), "m@example.org", SmtpServer("h"))
    )
    first, again = render_surge(alert(mail)), render_surge(alert(mail))
    assert first.body == again.body and first.kind == "email"
    assert first.subject.startswith("Surge (story): Drills")
    assert first.subject.endswith("3 outlets in 2 languages within 12 min")
    html = email_part(first.body, "html")
    assert html is not None and "<script>" not in html and "&lt;script&gt;" in html


def test_slack_escapes_its_control_characters() -> None:
    hook = Receiver("ops", webhook=WebhookReceiver("https://hooks.example.org/x", format="slack"))
    body = json.loads(render_surge(alert(hook)).body)
    text = body["blocks"][0]["text"]["text"]
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<https://news.example.org/a|" in text  # the one link is ours
    assert "<https://evil.example" not in text
