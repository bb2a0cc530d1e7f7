"""The console's protections, through its HTTP interface (in-process client)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from monitor.errors import MonitorError
from monitor.web.config import checked_token
from monitor.web.security import CSP

from .conftest import DemoState, csrf_of, make_client

TOKEN = "s3cret-console-token-0123456789"


def test_every_answer_carries_a_csp_without_inline_script(client: TestClient) -> None:
    for path in ("/login", "/healthz", "/static/console.css", "/no-such-page"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_beyond_loopback_without_a_token_the_console_refuses_to_start() -> None:
    with pytest.raises(MonitorError, match="without a token") as raised:
        checked_token("0.0.0.0", None)
    assert "MONITOR_WEB_TOKEN" in str(raised.value)
    with pytest.raises(MonitorError, match="at least 16"):
        checked_token("0.0.0.0", "short")
    assert checked_token("127.0.0.1", None) is None
    assert checked_token("::1", None) is None
    assert checked_token("0.0.0.0", TOKEN) == TOKEN


def test_with_a_token_pages_need_it_and_probes_do_not(console_state: DemoState) -> None:
    with make_client(console_state, token=TOKEN, host="0.0.0.0") as client:
        assert client.get("/healthz").status_code == 200
        refused = client.get("/feeds", headers={"accept": "application/json"})
        assert refused.status_code == 401
        redirected = client.get("/feeds", headers={"accept": "text/html"}, follow_redirects=False)
        assert redirected.status_code == 303
        assert redirected.headers["location"] == "/login?next=/feeds"
        bearer = client.get("/login", headers={"authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200
        wrong = client.get("/feeds", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_the_login_form_sets_a_cookie_that_is_not_the_token(console_state: DemoState) -> None:
    with make_client(console_state, token=TOKEN, host="0.0.0.0") as client:
        bad = client.post("/login", data={"token": "guess", "next": "/feeds"})
        assert bad.status_code == 401
        assert "not the console" in bad.text
        assert "monitor_session" not in client.cookies
        good = client.post(
            "/login", data={"token": TOKEN, "next": "https://evil.example/"}, follow_redirects=False
        )
        assert good.status_code == 303
        assert good.headers["location"] == "/"  # never a redirect to another site
        session = client.cookies.get("monitor_session")
        assert session and TOKEN not in session
        assert "HttpOnly" in good.headers["set-cookie"]
        assert "SameSite=strict" in good.headers["set-cookie"].replace("Strict", "strict")


def test_a_post_without_the_csrf_token_is_refused(client: TestClient) -> None:
    csrf = csrf_of(client)
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    cross = client.post("/logout", data={"csrf": csrf}, headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    ok = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert ok.status_code == 303
