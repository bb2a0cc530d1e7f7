"""A digest as a webhook body: versioned JSON (`format: json`) or Slack (`format: slack`).

JSON (documented by `docs/webhook-schema.json`): UTF-8, keys sorted, compact separators, so
the same digest always gives the same bytes (and the same signature). Times are ISO 8601 UTC
with a `Z`. `version` changes only when a field changes meaning or goes away; new fields may
be added within a version, so consumers must ignore keys they do not know. Feed text is
cleaned first (`clean.tidy`), as in email.

Slack: an incoming-webhook body `{"text", "blocks"}` in Slack's mrkdwn, which Mattermost and
Rocket.Chat also accept (they show `text`). Feed text has `&`, `<`, `>` escaped as Slack
asks, so a title cannot forge a link or a mention; Slack's limits (50 blocks, 3000
characters a section) are kept by cutting with a "more" line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from monitor.digest.arrange import Group, arrange, is_update, subject
from monitor.digest.render.clean import link_host, tidy
from monitor.digest.render.common import (
    entities_text,
    local_time,
    more_hint,
    report_label,
    safe_link,
    sent_text,
    story_heading,
    story_reports,
    story_url,
)
from monitor.digest.storyview import DigestStory, StoryReport
from monitor.models import Digest, DigestEntry, Rendered, SentBefore

VERSION = "1"
SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 3000
_EMOJI = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":large_blue_circle:",
    "info": ":white_circle:",
}


def render_webhook(digest: Digest, now: datetime) -> Rendered:
    """The body for the receiver's `format`. The body depends on the digest alone: the time
    of sending travels in the `webhook-timestamp` header. (`now` keeps the signature of
    `render_email`, whose Date header needs it.)"""
    hook = digest.receiver.webhook
    if hook is None:
        raise ValueError(f"receiver {digest.receiver.id!r} has no webhook settings")
    if hook.format not in ("json", "slack"):
        raise ValueError(f"receiver {digest.receiver.id!r}: unknown webhook format {hook.format!r}")
    digest = tidy(digest)
    body = slack_body(digest) if hook.format == "slack" else json_body(digest)
    return Rendered(
        digest_id=digest.id,
        kind="webhook",
        body=dumps(body),
        subject=subject(digest),
        content_type="application/json",
    )


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def iso(when: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, seconds precision; None stays None."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- JSON ------------------------------------------------------------------------------------


def json_body(digest: Digest) -> dict[str, Any]:
    return {
        "version": VERSION,
        "type": "monitor.digest",
        "digest_id": digest.id,
        "route": digest.route.id,
        "receiver": digest.receiver.id,
        "subject": subject(digest),
        "created": iso(digest.created),
        "window": {"start": iso(digest.window_start), "end": iso(digest.window_end)},
        "groups": [_group_json(g, digest) for g in arrange(digest)],
        "truncated": digest.truncated,
        "more": more_hint(digest),
        "already_sent": [_sent_json(s, digest) for s in digest.already],
    }


def _group_json(group: Group, digest: Digest) -> dict[str, Any]:
    items = [_item_json(e, story_url(digest, e)) for e in group.entries]
    return {"key": group.key, "title": group.title, "items": items}


def _item_json(entry: DigestEntry, console: str | None = None) -> dict[str, Any]:
    item = entry.item
    return {
        "id": entry.item_id,
        "feed": item.feed_id,
        "feed_title": entry.feed_title,
        "title": item.title,
        "summary": item.summary,
        "link": item.link,
        "host": link_host(safe_link(item.link)),
        "published": iso(item.published),
        "lang": item.lang,
        "severity": entry.severity,
        "regions": list(item.regions),
        "entities": [tag.as_json() for tag in item.entities],
        "rules": [
            {"id": r.id, "title": r.title, "severity": r.severity, "terms": list(r.terms)}
            for r in entry.rules
        ],
        "also": [{"feed_title": t, "link": link} for t, link in entry.also],
        "story": _story_json(entry, console),
    }


def _story_json(entry: DigestEntry, console: str | None) -> dict[str, Any]:
    """The stored story the entry stands for; an entry made without one (a story of its own)
    gets one of its own item, with `id` null. `url` (its page in the console) only when
    channels.yaml sets `web_url`: without it the body stays as it was."""
    story = entry.story or DigestStory(None, (_own_report(entry),))
    update = story.update
    link = {"url": console} if console else {}
    return {
        **link,
        "id": story.id,
        "outlets": list(story.outlets),
        "languages": list(story.languages),
        "reports": [
            {
                "id": r.item_id,
                "outlet": r.outlet,
                "outlet_title": r.outlet_title,
                "lang": r.lang,
                "title": r.title,
                "link": r.link,
                "published": iso(r.published),
            }
            for r in story.reports
        ],
        "update": None
        if update is None
        else {
            "outlets": list(update.outlets),
            "languages": list(update.languages),
            "severity_was": update.severity_was,
        },
    }


def _own_report(entry: DigestEntry) -> StoryReport:
    item = entry.item
    return StoryReport(
        entry.item_id, item.feed_id, entry.feed_title, item.lang, item.title, item.link,
        item.published,
    )  # fmt: skip


def _sent_json(sent: SentBefore, digest: Digest) -> dict[str, Any]:
    entry = sent.entry
    return {
        "id": entry.item_id,
        "title": entry.item.title,
        "link": entry.item.link,
        "severity": entry.severity,
        "sent": iso(sent.sent),
        "digest_id": sent.digest_id,
        "note": sent_text(sent, digest),
    }


# --- Slack ---------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's three control characters; the rest of mrkdwn is left as the feed wrote it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(digest: Digest) -> dict[str, Any]:
    title = subject(digest)
    blocks: list[dict[str, Any]] = [_header(title)]
    dropped = 0
    reserved = 2 if digest.already else 1  # for the "already sent" and the "more" blocks
    for group in arrange(digest):
        section = [_section(f"*{slack_escape(group.title)}* ({len(group.entries)})")]
        section += [
            _section(_entry_mrkdwn(e, digest.route.timezone, story_url(digest, e)))
            for e in group.entries
        ]
        room = max(0, SLACK_MAX_BLOCKS - reserved - len(blocks))
        kept = section[:room]
        blocks += kept
        dropped += len(group.entries) - max(0, len(kept) - 1)  # kept[0] is the heading
    if digest.already:
        blocks.append(_section(_already_mrkdwn(digest)))
    hint = _slack_more(digest, dropped)
    if hint:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": hint}]})
    return {"text": slack_escape(title), "blocks": blocks}


def _already_mrkdwn(digest: Digest) -> str:
    lines = [f"*Already sent* ({len(digest.already)})"]
    for sent in digest.already:
        entry = sent.entry
        link = _slack_link(entry.item.link, entry.item.title)
        lines.append(f"• *{entry.severity.upper()}* {link}: {sent_text(sent, digest)}")
    return "\n".join(lines)


def _header(title: str) -> dict[str, Any]:
    # Header blocks take plain text of at most 150 characters.
    return {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}


def _section(mrkdwn: str) -> dict[str, Any]:
    if len(mrkdwn) > SLACK_MAX_TEXT:
        mrkdwn = mrkdwn[: SLACK_MAX_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _slack_link(url: str | None, text: str) -> str:
    """A link followed by the host it really goes to (a link's text can claim anything)."""
    safe = safe_link(url)
    label = slack_escape(text).replace("|", "¦")  # `|` would end the link's URL part
    if not safe:
        return label
    return f"<{slack_escape(safe)}|{label}> ({slack_escape(link_host(safe) or '')})"


def _entry_mrkdwn(entry: DigestEntry, tz: str, console: str | None = None) -> str:
    item = entry.item
    severity = f"{_EMOJI.get(entry.severity, '')} *{entry.severity.upper()}*"
    meta = [entry.feed_title, local_time(item.published, tz), ", ".join(item.regions)]
    lines = [
        f"{severity} {'Update: ' if is_update(entry) else ''}{_slack_link(item.link, item.title)}",
        slack_escape(" · ".join(m for m in meta if m)),
    ]
    if item.summary:
        lines.append(slack_escape(item.summary))
    names = entities_text(entry)
    if names:
        lines.append(f"_Names:_ {slack_escape(names)}")
    heading = story_heading(entry)
    if heading:
        reports, more = story_reports(entry)
        listed = [
            f"{slack_escape(report_label(r))}: {_slack_link(r.link, r.title)}" for r in reports
        ]
        listed += [f"... and {more} more"] if more else []
        lines.append(f"_{slack_escape(heading)}:_ " + "; ".join(listed))
    elif entry.also and entry.story is None:
        others = ", ".join(_slack_link(link, t) for t, link in entry.also)
        lines.append(f"_Also reported by:_ {others}")
    if console:
        lines.append(f"<{slack_escape(console)}|Story in the console>")
    return "\n".join(lines)


def _slack_more(digest: Digest, dropped: int) -> str | None:
    parts = [f"{dropped} more entries did not fit in this message."] if dropped else []
    hint = more_hint(digest)
    return slack_escape(" ".join([*parts, hint] if hint else parts)) or None
