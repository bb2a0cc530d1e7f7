"""A proxy named by the environment (HTTP_PROXY, ALL_PROXY, NO_PROXY), with a real server on
127.0.0.1 standing in for the proxy: a request through a proxy names its whole URL."""

from __future__ import annotations

import pytest

from monitor.ingest import proxy
from monitor.ingest.fetch import Fetcher
from monitor.models import FeedState, FetchResult, FetchStatus, Settings
from tests.ingest.test_fetch import RSS, closed_port
from tests.support.feedserver import FeedServer, serve

FAST = Settings(connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)
ELSEWHERE = "http://feeds.example.invalid/desk.xml"  # never looked up: the proxy answers


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def fetch(url: str) -> FetchResult:
    async with Fetcher(FAST) as fetcher:
        return await fetcher.fetch("desk", FeedState("desk", url))


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_feed_is_fetched_through_the_proxy_the_environment_names(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    server.add("/desk.xml", serve(RSS))
    monkeypatch.setenv(variable, server.url("/"))
    result = await fetch(ELSEWHERE)
    assert (result.status, result.body) == (FetchStatus.OK, RSS)
    assert [r.path for r in server.requests] == [ELSEWHERE]


async def test_a_host_no_proxy_names_is_fetched_directly(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.add("/desk.xml", serve(RSS))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "intranet.example, 127.0.0.1")
    result = await fetch(url)
    assert (result.status, result.body) == (FetchStatus.OK, RSS)
    assert [r.path for r in server.requests] == ["/desk.xml"]


async def test_a_proxy_that_is_down_is_the_feed_s_error(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.add("/desk.xml", serve(RSS))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    result = await fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "connection refused" in result.error
    assert server.requests == []


@pytest.mark.parametrize(
    ("no_proxy", "exempt"),
    [
        ("*", True),
        ("example.org", True),
        (".example.org", True),
        ("*.example.org", True),
        ("news.example.org", True),
        ("other.org, EXAMPLE.ORG", True),
        ("ample.org", False),
        ("example.org.evil", False),
        ("", False),
    ],
)
def test_no_proxy_names_a_host_and_its_subdomains(no_proxy: str, exempt: bool) -> None:
    assert proxy.exempt("news.example.org", no_proxy) is exempt
