"""Pages from Jinja2 templates with auto-escaping: whatever a feed wrote is shown as text."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from monitor.web.security import CSRF_FIELD, csrf_token

NAV = (
    ("stories", "/", "Stories"),
    ("search", "/search", "Search"),
    ("rules", "/rules", "Rules"),
    ("feeds", "/feeds", "Feeds"),
    ("deliveries", "/deliveries", "Deliveries"),
)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("monitor.web", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ago"] = ago
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """`template` rendered with the layout's context: the navigation, the CSRF field for
    forms, whether the request came from htmx (a fragment then, not a whole page)."""
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            nav=NAV,
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(request),
            htmx=request.headers.get("hx-request") == "true",
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})


def when(value: datetime | None) -> str:
    """A time as the pages show it: UTC, to the minute (the title attribute gives seconds)."""
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """`5 min ago`, `3 h ago`, `2 d ago`; `in 4 min` for a time to come."""
    if value is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"
