"""Feeds behind a login: a URL with `user:password@` is refused (in feeds.yaml and by
`FeedsFile.add`, without echoing the password); `username_env`/`password_env` name the
variables, and the fetcher sends that login to the feed's own origin only."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.ingest.fetch import Fetcher
from monitor.ingest.poll import poll_cycle
from monitor.models import Feed, FeedState, FetchStatus, Settings
from monitor.store import Store
from tests.ingest.test_poll import TWO
from tests.support.feedserver import Exchange, FeedServer, Route, redirect

USER, PASSWORD = "reader", "s3cret-Passw0rd"
LOGIN_ENV = {"FEED_USER": USER, "FEED_PASSWORD": PASSWORD}
FAST = Settings(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)


def needs_login(body: bytes) -> Route:
    """200 with `body` for the right basic-auth login, 401 otherwise."""
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def route(exchange: Exchange) -> None:
        if exchange.headers.get("authorization") == expected:
            exchange.send(200, body, {"Content-Type": "application/rss+xml"})
        else:
            exchange.send(401, b"", {"WWW-Authenticate": 'Basic realm="feeds"'})

    return route


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LOGIN_ENV.items():
        monkeypatch.setenv(name, value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [f"https://{USER}:{PASSWORD}@example.org/rss", f"https://{USER}@example.org/rss"]
)
def test_a_url_with_credentials_is_refused_at_its_line(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f"feeds:\n  - url: https://a.org/rss\n  - url: {url}\n")
    with pytest.raises(ConfigError) as raised:
        load_feeds(path)
    error = raised.value
    assert (error.line, error.column) == (3, 10)
    assert error.message == "the feed 'url' for example.org carries credentials (user:password@)"
    assert error.hint is not None and "username_env" in error.hint and "password_env" in error.hint
    assert PASSWORD not in str(error)


def test_feeds_add_refuses_a_url_with_credentials(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - url: https://a.org/rss\n")
    edit = FeedsFile.load(path)
    with pytest.raises(ConfigError, match="carries credentials") as raised:
        edit.add(f"https://{USER}:{PASSWORD}@example.org/rss")
    assert PASSWORD not in str(raised.value)
    assert [f.url for f in edit.feeds] == ["https://a.org/rss"]


def test_login_variables_are_read(tmp_path: Path) -> None:
    text = "feeds:\n  - url: https://a.org/rss\n    username_env: FEED_USER\n"
    text += "    password_env: FEED_PASSWORD\n"
    (feed,) = load_feeds(write(tmp_path, text)).feeds
    assert (feed.username_env, feed.password_env) == ("FEED_USER", "FEED_PASSWORD")


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        ("    username_env: FEED_USER\n", (2, 5), "both variables or neither: add 'password_env'"),
        ("    password_env: hunter2\n", (3, 19), "'password_env' must name an environment"),
        ("    password: hunter2\n", (3, 5), "did you mean 'password_env'?"),
    ],
)
def test_bad_login_variables_are_errors(
    tmp_path: Path, extra: str, where: tuple[int, int], words: str
) -> None:
    path = write(tmp_path, "feeds:\n  - url: https://a.org/rss\n" + extra)
    with pytest.raises(ConfigError) as raised:
        load_feeds(path)
    assert (raised.value.line, raised.value.column) == where
    assert words in str(raised.value)


# --- the fetch -------------------------------------------------------------------------------


async def fetch(feed: Feed) -> tuple[FetchStatus, str | None, int | None]:
    async with Fetcher(FAST) as fetcher:
        result = await fetcher.fetch(feed.id, FeedState(feed.id, feed.url), feed)
    return result.status, result.error, result.http_status


def with_login(url: str) -> Feed:
    return Feed("private", url, username_env="FEED_USER", password_env="FEED_PASSWORD")


async def test_the_login_is_sent_from_the_variables(server: FeedServer, login: None) -> None:
    url = server.add("/private.xml", needs_login(TWO))
    assert await fetch(with_login(url)) == (FetchStatus.OK, None, 200)
    status, error, code = await fetch(Feed("private", url))  # no login named
    assert (status, code) == (FetchStatus.ERROR, 401)
    assert error is not None and "username_env and password_env" in error


async def test_an_unset_variable_is_an_error_naming_it(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.add("/private.xml", needs_login(TWO))
    monkeypatch.setenv("FEED_USER", USER)
    monkeypatch.delenv("FEED_PASSWORD", raising=False)
    status, error, _code = await fetch(with_login(url))
    assert status is FetchStatus.ERROR
    assert error is not None and "read from FEED_PASSWORD, which is not set" in error
    assert server.requests_to("/private.xml") == []  # nothing sent without the whole login


async def test_the_login_never_follows_a_redirect_to_another_origin(
    server: FeedServer, login: None
) -> None:
    with FeedServer() as elsewhere:
        target = elsewhere.add("/moved.xml", needs_login(TWO))
        url = server.add("/private.xml", redirect(target, 302))
        status, _error, code = await fetch(with_login(url))
        assert (status, code) == (FetchStatus.ERROR, 401)
        (first,) = server.requests_to("/private.xml")
        (second,) = elsewhere.requests_to("/moved.xml")
    assert first.headers["authorization"].startswith("Basic ")
    assert "authorization" not in second.headers


async def test_a_poll_logs_in_and_stores_the_items(
    server: FeedServer, login: None, tmp_path: Path
) -> None:
    feed = with_login(server.add("/private.xml", needs_login(TWO)))
    with Store(tmp_path / "monitor.db") as store:
        summary = await poll_cycle([feed], store, FAST, force=True)
        assert [o.status for o in summary.outcomes] == [FetchStatus.OK]
        assert store.count_items() == 2
        assert PASSWORD not in (store.states()["private"].url + str(store.states()["private"]))
