"""A digest as a complete RFC 5322 message: multipart/alternative, plain text and HTML.

Deterministic: the Message-ID is `<{digest id}@monitor>` and the MIME boundary is derived
from the digest id, so rendering the same digest at the same time gives the same bytes.
Both parts are UTF-8 in quoted-printable (mostly ASCII) or base64 (mostly CJK), never raw
8-bit, so any SMTP server carries them and no feed text can ever contain the boundary (QP
escapes `=`, base64 has no `_`). Headers are RFC 2047-encoded (`policy.SMTP`); only an
address that is not ASCII needs `policy.SMTPUTF8`, and then the server must offer SMTPUTF8.

Feed text is plain text here (never `item.html`), cleaned first (`clean.tidy`: no bidi
controls, one line, capped) and escaped with `html.escape`; only http(s) links become hrefs,
each followed by the host it really goes to; every header value is one line. The HTML has
inline styles only: no stylesheet, image or script, so nothing loads from elsewhere when the
mail is opened.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from datetime import datetime
from email.message import EmailMessage
from html import escape

from monitor.digest.arrange import Group, arrange, count_text, is_update, subject
from monitor.digest.render.clean import link_host, one_line, tidy
from monitor.digest.render.common import (
    entities_text,
    local_time,
    more_hint,
    regions_text,
    report_label,
    safe_link,
    sent_text,
    story_heading,
    story_reports,
    story_url,
    terms_text,
    window_text,
)
from monitor.models import Digest, DigestEntry, Rendered, SentBefore

# Colour AND word for each severity: the word carries it for readers who cannot see colour.
COLOURS = {
    "critical": "#b00020",
    "high": "#c0392b",
    "medium": "#b9770e",
    "low": "#1f618d",
    "info": "#5d6d7e",
}
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]")
_FONT = "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif"


def render_email(digest: Digest, now: datetime) -> Rendered:
    """The digest as message bytes; `now` becomes the Date header."""
    if digest.receiver.email is None:
        raise ValueError(f"receiver {digest.receiver.id!r} has no email settings")
    digest = tidy(digest)
    groups = arrange(digest)
    title = subject(digest)
    msg = _headers(digest, title, now)
    text, html = _text(digest, groups), _html(digest, title, groups)
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_cte(text))
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=_cte(html))
    msg.set_boundary(boundary(digest.id))
    return Rendered(
        digest_id=digest.id,
        kind="email",
        body=msg.as_bytes(policy=msg.policy),
        subject=title,
        content_type="message/rfc822",
    )


def email_part(raw: bytes, subtype: str) -> str | None:
    """The decoded `text/<subtype>` part ("plain" or "html") of a rendered message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else None


def boundary(digest_id: str) -> str:
    return "=_monitor_" + hashlib.sha256(digest_id.encode("utf-8")).hexdigest()[:32]


def message_id(digest_id: str) -> str:
    return f"<{_MSGID_UNSAFE.sub('-', digest_id)}@monitor>"


def _headers(digest: Digest, title: str, now: datetime) -> EmailMessage:
    settings = digest.receiver.email
    assert settings is not None  # checked by render_email
    addresses = [settings.sender, *settings.to, *settings.cc]
    ascii_only = all(a.isascii() for a in addresses)
    msg = EmailMessage(policy=email.policy.SMTP if ascii_only else email.policy.SMTPUTF8)
    # One line each: a newline in a value would end the header (the email package refuses to
    # build it at all), whatever a rule's title or a feed wrote.
    msg["Subject"] = one_line(title)
    msg["From"] = one_line(settings.sender)
    msg["To"] = ", ".join(one_line(a) for a in settings.to)
    if settings.cc:
        msg["Cc"] = ", ".join(one_line(a) for a in settings.cc)
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = message_id(digest.id)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Monitor-Route"] = one_line(digest.route.id)
    return msg


def _cte(text: str) -> str:
    """base64 when over a fifth of the text is not ASCII (QP would triple it), else QP."""
    foreign = sum(not c.isascii() for c in text)
    return "base64" if foreign * 5 > len(text) else "quoted-printable"


# --- plain text -------------------------------------------------------------------------


def _text(digest: Digest, groups: list[Group]) -> str:
    lines = [_intro(digest, groups), ""]
    for group in groups:
        lines += [f"== {group.title} ({len(group.entries)}) ==", ""]
        for entry in group.entries:
            lines += [*_entry_text(entry, digest.route.timezone, story_url(digest, entry)), ""]
    if not digest.entries:
        lines += ["No new alerts.", ""]
    if digest.already:
        lines += [f"== {ALREADY} ({len(digest.already)}) ==", ""]
        lines += [_sent_line(sent, digest) for sent in digest.already] + [""]
    hint = more_hint(digest)
    if hint:
        lines += [hint, ""]
    return "\n".join(lines)


ALREADY = "Already sent"


def _intro(digest: Digest, groups: list[Group]) -> str:
    entries = [e for g in groups for e in g.entries]  # as the headings count: one per story
    return (
        f"Digest for route {digest.route.id} ({digest.receiver.id}): "
        f"{count_text(entries) or '0 alerts'}, published {window_text(digest)}"
    )


def _entry_text(entry: DigestEntry, tz: str, console: str | None) -> list[str]:
    item = entry.item
    lines = [f"[{entry.severity.upper()}] {_marker(entry)}{item.title}", f"  {_meta(entry, tz)}"]
    if item.summary:
        lines.append(f"  {item.summary}")
    lines.append(f"  {item.link or '(no link)'}")
    if console:
        lines.append(f"  Story in the console: {console}")
    if item.entities:
        lines.append(f"  Names: {entities_text(entry)}")
    if entry.rules:
        lines.append(f"  Matched: {terms_text(entry)}")
    heading = story_heading(entry)
    if heading:
        lines.append(f"  {heading}:")
        reports, more = story_reports(entry)
        for report in reports:
            link = f" <{report.link}>" if report.link else ""
            lines.append(f"    - {report_label(report)}: {report.title}{link}")
        if more:
            lines.append(f"    ... and {more} more")
    elif entry.also and entry.story is None:
        others = "; ".join(f"{t} <{link}>" if link else t for t, link in entry.also)
        lines.append(f"  Also reported by: {others}")
    return lines


def _marker(entry: DigestEntry) -> str:
    """`Update: ` before the headline of an update of a story the route was sent before."""
    return "Update: " if is_update(entry) else ""


def _sent_line(sent: SentBefore, digest: Digest) -> str:
    entry = sent.entry
    return f"- [{entry.severity.upper()}] {entry.item.title}: {sent_text(sent, digest)}"


def _meta(entry: DigestEntry, tz: str) -> str:
    parts = [entry.feed_title, local_time(entry.item.published, tz)]
    return " · ".join([*parts, regions_text(entry)] if entry.item.regions else parts)


# --- HTML ----------------------------------------------------------------------------------


def _html(digest: Digest, title: str, groups: list[Group]) -> str:
    body = [f'<h1 style="font-size:18px;margin:0 0 4px">{escape(title)}</h1>']
    body.append(f'<p style="color:#555;margin:0 0 16px">{escape(_intro(digest, groups))}</p>')
    for group in groups:
        heading = f"{escape(group.title)} ({len(group.entries)})"
        body.append(f'<h2 style="font-size:16px;margin:20px 0 8px">{heading}</h2>')
        body += [
            _entry_html(entry, digest.route.timezone, story_url(digest, entry))
            for entry in group.entries
        ]
    if not digest.entries:
        body.append("<p>No new alerts.</p>")
    if digest.already:
        heading = f"{ALREADY} ({len(digest.already)})"
        body.append(f'<h2 style="font-size:14px;margin:20px 0 8px;color:#555">{heading}</h2>')
        items = "".join(f"<li>{_sent_html(sent, digest)}</li>" for sent in digest.already)
        body.append(f'<ul style="color:#555;font-size:13px;padding-left:18px">{items}</ul>')
    hint = more_hint(digest)
    if hint:
        body.append(f'<p style="color:#555;margin-top:16px">{escape(hint)}</p>')
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n"
        f'<body style="{_FONT};color:#222;max-width:720px">\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _sent_html(sent: SentBefore, digest: Digest) -> str:
    entry = sent.entry
    severity = escape(entry.severity.upper())
    return f"[{severity}] {_link(entry.item.link, entry.item.title)}: {sent_text(sent, digest)}"


def _entry_html(entry: DigestEntry, tz: str, console: str | None) -> str:
    item, colour = entry.item, COLOURS.get(entry.severity, COLOURS["medium"])
    badge = (
        f'<span style="background:{colour};color:#fff;padding:1px 6px;border-radius:3px;'
        f'font-size:12px;font-weight:bold">{escape(entry.severity.upper())}</span>'
    )
    parts = [
        f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:0 0 12px">',
        f"<div>{badge} {escape(_marker(entry))}<strong>{_link(item.link, item.title)}</strong>"
        "</div>",
        f'<div style="color:#555;font-size:13px">{escape(_meta(entry, tz))}</div>',
    ]
    if item.summary:
        parts.append(f'<div style="margin:4px 0">{escape(item.summary)}</div>')
    if console:
        parts.append(_small(f"Story in the console: {_link(console, 'all its reports')}"))
    if item.entities:
        parts.append(_small(f"Names: {escape(entities_text(entry))}"))
    if entry.rules:
        parts.append(_small(f"Matched: {escape(terms_text(entry))}"))
    heading = story_heading(entry)
    if heading:
        parts.append(_small(escape(heading) + ":" + _reports_html(entry)))
    elif entry.also and entry.story is None:
        others = ", ".join(_link(link, t) for t, link in entry.also)
        parts.append(_small(f"Also reported by: {others}"))
    return "\n".join([*parts, "</div>"])


def _reports_html(entry: DigestEntry) -> str:
    reports, more = story_reports(entry)
    rows = [f"<li>{escape(report_label(r))}: {_link(r.link, r.title)}</li>" for r in reports]
    rows += [f"<li>... and {more} more</li>"] if more else []
    return f'<ul style="margin:2px 0;padding-left:18px">{"".join(rows)}</ul>'


def _small(inner_html: str) -> str:
    return f'<div style="color:#555;font-size:13px">{inner_html}</div>'


def _link(url: str | None, text: str) -> str:
    """An anchor when `url` is http(s), followed by the host it really goes to (a link's text
    can claim anything); otherwise the text, and the URL shown as text."""
    safe = safe_link(url)
    if safe:
        host = f' <span style="color:#777">({escape(link_host(safe) or "")})</span>'
        return f'<a href="{escape(safe)}" style="color:#1a5276">{escape(text)}</a>{host}'
    return escape(f"{text} ({url})" if url else text)
