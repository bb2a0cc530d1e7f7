"""A surge alert as an email or a webhook body: what surged, why, and the reports behind it.

Built like a digest and frozen like one, so it keeps a digest's promises (deterministic bytes,
Message-ID and `webhook-id` from its id). The JSON body is a version 1 digest body (one group:
the reports) with one key more, `surge` (kind, key, why, when, and the counts), so a consumer
of digests reads it unchanged and one that knows surges can tell it apart. Feed text is cleaned
as in digests (`clean`).
"""

from __future__ import annotations

import email.policy
import email.utils
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from html import escape
from typing import Any

from monitor.digest.render.clean import NAME_MAX, SUMMARY_MAX, TITLE_MAX, clean_link, one_line
from monitor.digest.render.common import local_time, safe_link
from monitor.digest.render.email import boundary, message_id
from monitor.digest.render.webhook import VERSION, dumps, iso, slack_escape
from monitor.models import DigestEntry, Receiver, Rendered, Route
from monitor.story.surge import Surge

SUBJECT_MAX = 200


@dataclass(frozen=True)
class SurgeAlert:
    """One surge for one route, before rendering."""

    id: str  # the digest id: stable across retries
    route: Route
    receiver: Receiver
    surge_id: int
    surge: Surge
    title: str  # what surged: a story's headline, a rule's title, a region
    reports: tuple[DigestEntry, ...]  # the reports (story) or last hour's matches (volume)


def subject(alert: SurgeAlert) -> str:
    what = "story" if alert.surge.kind == "story" else "volume"
    return one_line(f"Surge ({what}): {alert.title}: {alert.surge.why}", SUBJECT_MAX)


def render_surge(alert: SurgeAlert) -> Rendered:
    """Email or webhook bytes for the alert's receiver."""
    if alert.receiver.email is not None:
        return _email(alert)
    hook = alert.receiver.webhook
    assert hook is not None
    body = _slack(alert) if hook.format == "slack" else surge_json(alert)
    return Rendered(alert.id, "webhook", dumps(body), subject(alert), "application/json")


# --- email -----------------------------------------------------------------------------------


def _email(alert: SurgeAlert) -> Rendered:
    settings = alert.receiver.email
    assert settings is not None
    ascii_only = all(a.isascii() for a in (settings.sender, *settings.to, *settings.cc))
    msg = EmailMessage(policy=email.policy.SMTP if ascii_only else email.policy.SMTPUTF8)
    msg["Subject"] = subject(alert)
    msg["From"] = one_line(settings.sender)
    msg["To"] = ", ".join(one_line(a) for a in settings.to)
    if settings.cc:
        msg["Cc"] = ", ".join(one_line(a) for a in settings.cc)
    msg["Date"] = email.utils.format_datetime(alert.surge.fired_at)
    msg["Message-ID"] = message_id(alert.id)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Monitor-Route"] = one_line(alert.route.id)
    msg["X-Monitor-Surge"] = one_line(f"{alert.surge.kind} {alert.surge.key}")
    text, html = _text(alert), _html(alert)
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    msg.set_boundary(boundary(alert.id))
    body = msg.as_bytes(policy=msg.policy)
    return Rendered(alert.id, "email", body, subject(alert), "message/rfc822")


def _when(alert: SurgeAlert, when: datetime) -> str:
    return local_time(when, alert.route.timezone)


def _text(alert: SurgeAlert) -> str:
    surge = alert.surge
    lines = [
        f"SURGE ({surge.kind}): {one_line(alert.title, TITLE_MAX)}",
        surge.why,
        f"fired {_when(alert, surge.fired_at)}; route {alert.route.id}",
        "",
        f"{len(alert.reports)} {'reports' if surge.kind == 'story' else 'matched items'}:"
        if alert.reports
        else "its items are no longer stored",
    ]
    for entry in alert.reports:
        item = entry.item
        lines.append(f"- [{entry.severity}] {one_line(item.title, TITLE_MAX)}")
        source = f"{one_line(entry.feed_title, NAME_MAX)} ({item.lang or '?'})"
        lines.append(f"  {source}, {_when(alert, item.published)}")
        link = clean_link(item.link)
        if link:
            lines.append(f"  {link}")
    return "\n".join(lines) + "\n"


def _html(alert: SurgeAlert) -> str:
    surge = alert.surge
    rows = []
    for entry in alert.reports:
        item = entry.item
        title = escape(one_line(item.title, TITLE_MAX))
        link = safe_link(clean_link(item.link))
        head = f'<a href="{escape(link)}">{title}</a>' if link else title
        source = escape(f"{one_line(entry.feed_title, NAME_MAX)} ({item.lang or '?'})")
        rows.append(
            f"<li><b>[{escape(entry.severity)}]</b> {head}<br>"
            f"<small>{source}, {escape(_when(alert, item.published))}</small></li>"
        )
    return (
        '<!DOCTYPE html><html><body style="font-family:sans-serif">'
        f"<h2>Surge ({escape(surge.kind)}): {escape(one_line(alert.title, TITLE_MAX))}</h2>"
        f"<p><b>{escape(surge.why)}</b><br><small>fired {escape(_when(alert, surge.fired_at))};"
        f" route {escape(alert.route.id)}</small></p><ul>{''.join(rows)}</ul></body></html>"
    )


# --- webhook ---------------------------------------------------------------------------------


def surge_json(alert: SurgeAlert) -> dict[str, Any]:
    """A version 1 digest body with the reports as its one group, and `surge`."""
    published = [e.item.published for e in alert.reports]
    surge = alert.surge
    return {
        "version": VERSION,
        "type": "monitor.digest",
        "digest_id": alert.id,
        "route": alert.route.id,
        "receiver": alert.receiver.id,
        "subject": subject(alert),
        "created": iso(surge.fired_at),
        "window": {
            "start": iso(min(published)) if published else None,
            "end": iso(max(published)) if published else iso(surge.fired_at),
        },
        "groups": [_group(alert)] if alert.reports else [],
        "truncated": 0,
        "more": None,
        "already_sent": [],
        "surge": {
            "id": alert.surge_id,
            "kind": surge.kind,
            "key": surge.key,
            "title": one_line(alert.title, TITLE_MAX),
            "why": surge.why,
            "fired_at": iso(surge.fired_at),
            "facts": dict(surge.facts),
        },
    }


def _group(alert: SurgeAlert) -> dict[str, Any]:
    items = [_item(e) for e in alert.reports]
    return {"key": alert.surge.key, "title": one_line(alert.title, TITLE_MAX), "items": items}


def _item(entry: DigestEntry) -> dict[str, Any]:
    item = entry.item
    return {
        "id": entry.item_id,
        "feed": item.feed_id,
        "feed_title": one_line(entry.feed_title, NAME_MAX),
        "title": one_line(item.title, TITLE_MAX),
        "summary": one_line(item.summary, SUMMARY_MAX),
        "link": clean_link(item.link),
        "published": iso(item.published),
        "lang": item.lang,
        "severity": entry.severity,
        "regions": list(item.regions),
        "rules": [
            {"id": r.id, "title": r.title, "severity": r.severity, "terms": list(r.terms)}
            for r in entry.rules
        ],
        "also": [],
    }


def _slack(alert: SurgeAlert) -> dict[str, Any]:
    lines = [f"*{slack_escape(subject(alert))}*"]
    for entry in alert.reports[:20]:
        title = slack_escape(one_line(entry.item.title, TITLE_MAX))
        link = safe_link(clean_link(entry.item.link))
        lines.append(f"• <{link}|{title}>" if link else f"• {title}")
    text = "\n".join(lines)[:3000]
    return {
        "text": subject(alert),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
