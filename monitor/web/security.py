"""What protects the console: the token, CSRF on every POST, and the response headers.

- Token: when the console is bound beyond loopback, every page needs `MONITOR_WEB_TOKEN`,
  as `Authorization: Bearer <token>` (scripts) or through the login form, which sets an
  HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the token itself).
  `/healthz` and `/metrics` stay open: probes and scrapers carry no login.
- CSRF: a POST must carry the form field `csrf` equal to the `monitor_csrf` cookie (the
  double-submit pattern; the cookie is random per browser and SameSite=Strict), and a browser
  that says the request is cross-site (`Sec-Fetch-Site`) is refused outright.
- Headers: a Content-Security-Policy allowing only this origin's scripts and styles (no inline
  script, so injected markup cannot run), no framing, no referrer sent to the outlets the
  pages link to, no MIME sniffing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "monitor_session"
CSRF_COOKIE = "monitor_csrf"
CSRF_FIELD = "csrf"
OPEN_PATHS = ("/healthz", "/metrics", "/login", "/static/")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def session_value(token: str) -> str:
    """What the session cookie holds: proof of the token that cannot be turned back into it."""
    return hmac.new(token.encode(), b"monitor console session", hashlib.sha256).hexdigest()


def authorised(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (made on its first page; `SecurityMiddleware` sets the
    cookie when the request came without one)."""
    token: str = request.scope.setdefault("monitor.csrf", request.cookies.get(CSRF_COOKIE, ""))
    if not token:
        token = secrets.token_urlsafe(24)
        request.scope["monitor.csrf"] = token
        request.scope["monitor.csrf_new"] = True
    return token


class SecurityMiddleware:
    """Token, CSRF and headers around every request (pure ASGI: the body is read once, here,
    for the CSRF field, and handed on unchanged)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        if not path.startswith(OPEN_PATHS) and not authorised(request, self.token):
            await _refused(request)(scope, receive, send)
            return
        if request.method == "POST" and path != "/login":
            body = await _whole_body(receive)
            problem = _csrf_problem(request, body)
            if problem is not None:
                await PlainTextResponse(problem, status_code=403)(scope, receive, send)
                return
            receive = _replay(body)
        await self.app(scope, receive, _with_headers(send, scope))


def _refused(request: Request) -> Response:
    wants_page = "text/html" in request.headers.get("accept", "")
    if request.method == "GET" and wants_page:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return PlainTextResponse(
        "the console needs its token: Authorization: Bearer <MONITOR_WEB_TOKEN>, or log in at "
        "/login",
        status_code=401,
        headers={"www-authenticate": "Bearer"},
    )


def _csrf_problem(request: Request, body: bytes) -> str | None:
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return "refused: a request from another site"
    cookie = request.cookies.get(CSRF_COOKIE, "")
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    sent = (form.get(CSRF_FIELD) or [request.headers.get("x-csrf-token", "")])[0]
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return "refused: the form's CSRF token is missing or stale (reload the page and retry)"
    return None


async def _whole_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body"))
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _with_headers(send: Send, scope: Scope) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                headers.setdefault(name, value)
            if scope.get("monitor.csrf_new"):
                headers.append(
                    "set-cookie",
                    f"{CSRF_COOKIE}={scope['monitor.csrf']}; Path=/; HttpOnly; SameSite=Strict",
                )
        await send(message)

    return sending
