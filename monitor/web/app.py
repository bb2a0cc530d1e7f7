"""The console as one Starlette application (`create_app`), health and metrics included."""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.errors import MonitorError
from monitor.service.health import Health
from monitor.web.config import WebConfig
from monitor.web.pages import deliveries, feeds, rules, search, stories
from monitor.web.render import page
from monitor.web.security import SESSION_COOKIE, SecurityMiddleware, session_value
from monitor.web.state import Console

SESSION_AGE = 12 * 3600  # seconds a login lasts


def create_app(config: WebConfig) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Route("/metrics", _metrics),
        Route("/login", _login_form, methods=["GET"]),
        Route("/login", _login, methods=["POST"]),
        Route("/logout", _logout, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("monitor.web", "static")]), name="static"),
    ]
    for module in (stories, search, rules, feeds, deliveries):
        routes.extend(module.ROUTES)
    app = Starlette(
        routes=routes,
        exception_handlers={MonitorError: _monitor_error, HTTPException: _http_error},
    )
    app.state.console = Console(config)
    app.add_middleware(SecurityMiddleware, token=config.token)
    return app


def _config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.console.config
    return config


def _healthz(request: Request) -> Response:
    check = _config(request).health
    if check is None:  # `monitor web` alone: answering is all there is to check
        return JSONResponse(
            {"status": "ok", "console": True}, headers={"cache-control": "no-store"}
        )
    try:
        health = check()
    except Exception as exc:  # a bug in a check must answer 503, not hang up
        health = Health(ok=False, reason=f"health check failed: {exc!r}")
    body = json.dumps(health.body(), ensure_ascii=False) + "\n"
    return Response(
        body,
        status_code=200 if health.ok else 503,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def _metrics(request: Request) -> Response:
    metrics = _config(request).metrics
    if metrics is None:
        return PlainTextResponse("no metrics: `monitor web` serves the console only\n", 404)
    body, content_type = metrics()
    return Response(body, media_type=content_type, headers={"cache-control": "no-store"})


def _next(request: Request, value: str | None) -> str:
    """Where to go after logging in: a path on this console only (never another site)."""
    target = urlsplit(value or "/")
    if target.scheme or target.netloc or not target.path.startswith("/"):
        return "/"
    return target.path + (f"?{target.query}" if target.query else "")


def _login_form(request: Request) -> Response:
    nxt = _next(request, request.query_params.get("next"))
    return page(request, "login.html", next=nxt, wrong=False, needed=_config(request).token)


async def _login(request: Request) -> Response:
    form = await request.form()
    token = _config(request).token
    nxt = _next(request, str(form.get("next") or "/"))
    given = str(form.get("token") or "")
    if token is None:
        return RedirectResponse(nxt, status_code=303)
    if not hmac.compare_digest(given.encode(), token.encode()):
        return page(request, "login.html", status_code=401, next=nxt, wrong=True, needed=True)
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        max_age=SESSION_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _monitor_error(request: Request, exc: Exception) -> Response:
    return page(request, "error.html", status_code=500, title="Error", message=str(exc))


def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    return page(request, "error.html", status_code=status, title=str(status), message=detail)
