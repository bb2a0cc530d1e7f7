"""The fetch stage against a real, misbehaving HTTP server on 127.0.0.1, and retry_delay.

Each server test names the behaviour the route simulates and the FetchResult expected of it.
Timeouts and the body cap are small (FAST) so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import tracemalloc
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.backoff import parse_retry_after, retry_delay
from monitor.ingest.fetch import Fetcher
from monitor.models import FeedState, FetchResult, FetchStatus, Settings
from tests.support.feedserver import (
    FeedServer,
    Route,
    crowd,
    drip,
    gzip_bomb,
    huge,
    redirect,
    serve,
    slow,
    stall,
    status,
    with_etag,
    with_last_modified,
)

# A minimal valid RSS 2.0 document with one item; the fetch stage must hand it over byte for byte.
RSS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Desk</title>'
    b"<item><title>PLA drills near the Taiwan Strait</title><guid>1</guid></item>"
    b"</channel></rss>\n"
)
# A web page where a feed was expected: fetch returns it (OK); telling it apart is parse's job.
HTML = b"<!doctype html><html><head><title>News</title></head><body>Not a feed</body></html>"

CAP = 64 * 1024
FAST = Settings(connect_timeout=1.0, read_timeout=0.3, total_timeout=1.0, max_body_bytes=CAP)


async def fetch(url: str, state: FeedState | None = None, settings: Settings = FAST) -> FetchResult:
    async with Fetcher(settings) as fetcher:
        return await fetcher.fetch("desk", state or FeedState("desk", url))


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- plain success ------------------------------------------------------------------------


async def test_ok_hands_over_body_headers_hash_and_sends_project_headers(
    server: FeedServer,
) -> None:
    url = server.add("/feed.xml", serve(RSS, headers={"X-Served-By": "test"}))
    result = await fetch(url)
    assert result.status is FetchStatus.OK
    assert (result.http_status, result.body, result.url) == (200, RSS, url)
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.headers["x-served-by"] == "test"
    assert result.body_hash == hashlib.sha256(RSS).hexdigest()
    assert result.error is None and result.elapsed > 0
    sent = server.requests_to("/feed.xml")[0].headers
    assert sent["user-agent"] == Settings().user_agent
    assert "application/rss+xml" in sent["accept"] and "application/atom+xml" in sent["accept"]
    assert sent["accept-encoding"] == "gzip, deflate"


async def test_html_page_is_returned_with_its_content_type(server: FeedServer) -> None:
    result = await fetch(server.add("/", serve(HTML, "text/html; charset=utf-8")))
    assert result.status is FetchStatus.OK and result.body == HTML
    assert result.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_body_is_decoded(server: FeedServer, encoding: str) -> None:
    result = await fetch(server.add("/z.xml", serve(RSS, encoding=encoding)))
    assert result.status is FetchStatus.OK and result.body == RSS
    assert result.body_hash == hashlib.sha256(RSS).hexdigest()  # of the decoded bytes


async def test_unknown_content_encoding_is_an_error(server: FeedServer) -> None:
    result = await fetch(
        server.add("/br.xml", serve(b"\x0b\x02", headers={"Content-Encoding": "br"}))
    )
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "'br'" in result.error and "cannot decode" in result.error


# --- conditional GET ----------------------------------------------------------------------


async def test_etag_is_sent_back_and_304_is_not_modified(server: FeedServer) -> None:
    url = server.add("/etag.xml", with_etag(RSS, '"v1"'))
    first = await fetch(url)
    assert first.status is FetchStatus.OK and first.etag == '"v1"'
    state = FeedState("desk", url, etag=first.etag, body_hash=first.body_hash)
    second = await fetch(url, state)
    assert second.status is FetchStatus.NOT_MODIFIED and second.http_status == 304
    assert second.body is None
    assert (second.etag, second.body_hash) == ('"v1"', first.body_hash)  # kept for next time
    assert server.requests_to("/etag.xml")[1].headers["if-none-match"] == '"v1"'


async def test_last_modified_is_sent_back_and_304_is_not_modified(server: FeedServer) -> None:
    stamp = "Tue, 01 Apr 2025 06:00:00 GMT"
    url = server.add("/lm.xml", with_last_modified(RSS, stamp))
    first = await fetch(url)
    assert first.status is FetchStatus.OK and first.last_modified == stamp
    second = await fetch(url, FeedState("desk", url, last_modified=stamp))
    assert second.status is FetchStatus.NOT_MODIFIED and second.last_modified == stamp
    assert server.requests_to("/lm.xml")[1].headers["if-modified-since"] == stamp


async def test_same_body_without_validators_is_not_modified_by_hash(server: FeedServer) -> None:
    url = server.add("/plain.xml", serve(RSS))
    same = FeedState("desk", url, body_hash=hashlib.sha256(RSS).hexdigest())
    result = await fetch(url, same)
    assert result.status is FetchStatus.NOT_MODIFIED and result.body is None
    assert result.body_hash == same.body_hash
    changed = await fetch(url, FeedState("desk", url, body_hash="0" * 64))
    assert changed.status is FetchStatus.OK and changed.body == RSS


# --- size caps ----------------------------------------------------------------------------


async def test_declared_length_over_the_cap_is_refused_early(server: FeedServer) -> None:
    result = await fetch(server.add("/big.xml", huge(CAP * 100)))
    assert result.status is FetchStatus.ERROR and result.body is None
    assert result.error is not None and f"{CAP:,}-byte limit" in result.error
    assert "announces" in result.error  # refused on Content-Length, before reading


async def test_undeclared_huge_body_is_cut_at_the_cap(server: FeedServer) -> None:
    result = await fetch(server.add("/big.xml", huge(CAP * 100, declare_length=False)))
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and f"{CAP:,}-byte limit" in result.error


async def test_gzip_bomb_is_refused_without_inflating_it(server: FeedServer) -> None:
    expanded = 64 * 1024 * 1024
    url = server.add("/bomb.xml", gzip_bomb(expanded))  # built before measuring
    async with Fetcher(FAST) as fetcher:
        tracemalloc.start()
        try:
            result = await fetcher.fetch("desk", FeedState("desk", url))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "larger once decompressed" in result.error
    assert peak < expanded // 16  # a few caps' worth, not the inflated bomb


# --- redirects ----------------------------------------------------------------------------


async def test_permanent_chain_reports_the_new_url(server: FeedServer) -> None:
    server.add("/old", redirect("/older", 301))
    server.add("/older", redirect(server.url("/new"), 308))  # relative, then absolute
    final = server.add("/new", serve(RSS))
    result = await fetch(server.url("/old"))
    assert result.status is FetchStatus.OK and result.body == RSS
    assert result.url == final and result.permanent_url == final


@pytest.mark.parametrize("temporary", [302, 307])
async def test_a_temporary_hop_keeps_the_old_url(server: FeedServer, temporary: int) -> None:
    server.add("/old", redirect("/mid", 301))
    server.add("/mid", redirect("/new", temporary))
    final = server.add("/new", serve(RSS))
    result = await fetch(server.url("/old"))
    assert result.status is FetchStatus.OK and result.url == final
    assert result.permanent_url is None


async def test_permanent_redirect_to_an_error_does_not_move_the_feed(server: FeedServer) -> None:
    server.add("/old", redirect("/missing", 301))
    result = await fetch(server.url("/old"))
    assert result.status is FetchStatus.ERROR and result.http_status == 404
    assert result.permanent_url is None


async def test_redirect_loop_is_an_error(server: FeedServer) -> None:
    server.add("/a", redirect("/b", 302))
    server.add("/b", redirect("/a", 302))
    result = await fetch(server.url("/a"))
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "redirect loop" in result.error
    assert len(server.requests) == 2


@pytest.mark.parametrize(("hops", "expected"), [(5, FetchStatus.OK), (6, FetchStatus.ERROR)])
async def test_at_most_max_redirects_are_followed(
    server: FeedServer, hops: int, expected: FetchStatus
) -> None:
    for hop in range(hops):
        server.add(f"/{hop}", redirect(f"/{hop + 1}", 302))
    server.add(f"/{hops}", serve(RSS))
    result = await fetch(server.url("/0"))
    assert result.status is expected
    if expected is FetchStatus.ERROR:
        assert result.error is not None and "too many redirects (more than 5)" in result.error


# --- HTTP errors --------------------------------------------------------------------------


async def test_410_is_gone(server: FeedServer) -> None:
    result = await fetch(server.add("/gone", status(410)))
    assert result.status is FetchStatus.GONE and result.http_status == 410
    assert result.error is not None and "HTTP 410 Gone" in result.error


async def test_429_carries_retry_after_seconds(server: FeedServer) -> None:
    result = await fetch(server.add("/busy", status(429, {"Retry-After": "120"})))
    assert result.status is FetchStatus.ERROR and result.http_status == 429
    assert result.retry_after == timedelta(seconds=120)
    assert result.error is not None and "wait 120 s" in result.error


async def test_503_carries_retry_after_as_http_date(server: FeedServer) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    result = await fetch(server.add("/down", status(503, {"Retry-After": later})))
    assert result.status is FetchStatus.ERROR and result.retry_after is not None
    assert timedelta(minutes=59) <= result.retry_after <= timedelta(hours=1)


async def test_500_is_an_error_with_a_plain_message(server: FeedServer) -> None:
    url = server.add("/broken", status(500))
    result = await fetch(url, FeedState("desk", url, etag='"old"', body_hash="ab" * 32))
    assert result.status is FetchStatus.ERROR and result.retry_after is None
    assert result.error is not None and result.error.startswith("HTTP 500 Internal Server Error")
    assert (result.etag, result.body_hash) == ('"old"', "ab" * 32)  # validators survive


async def test_404_tells_the_user_to_check_the_url(server: FeedServer) -> None:
    result = await fetch(server.url("/nothing-here"))
    assert result.status is FetchStatus.ERROR and result.http_status == 404
    assert result.error == "HTTP 404 Not Found; check the feed URL"


# --- timeouts and network failures --------------------------------------------------------


async def test_stalled_response_times_out_on_read(server: FeedServer) -> None:
    result = await fetch(server.add("/stall", stall()))
    assert result.status is FetchStatus.ERROR
    assert result.error is not None
    assert result.error.startswith("timed out after 0.3 s reading the response")
    assert 0.25 < result.elapsed < 1.0


async def test_drip_feed_hits_the_whole_request_deadline(server: FeedServer) -> None:
    # Each byte comes well within the read timeout; all of them would take ~2 s.
    result = await fetch(server.add("/drip", drip(RSS[:40], every=0.05)))
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and result.error.startswith("took more than 1 s in all")
    assert 0.9 < result.elapsed < 1.5


async def test_connection_refused_is_an_error() -> None:
    result = await fetch(f"http://127.0.0.1:{closed_port()}/feed.xml")
    assert result.status is FetchStatus.ERROR and result.http_status is None
    assert result.error is not None and result.error.startswith("connection refused by 127.0.0.1")


async def test_tls_to_a_plain_http_server_is_an_error(server: FeedServer) -> None:
    server.add("/feed.xml", serve(RSS))
    result = await fetch(f"https://127.0.0.1:{server.port}/feed.xml")
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and result.error.startswith("TLS handshake with 127.0.0.1")


@pytest.mark.parametrize("url", ["not a url", "ftp://example.org/feed.xml", "http://"])
async def test_a_bad_url_is_an_error_not_an_exception(url: str) -> None:
    result = await fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "check the feed URL" in result.error


async def test_dns_failure_message() -> None:
    # No name lookup in tests (it may hang offline): a transport fails as httpx does on DNS.
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("lookup failed") from socket.gaierror(-2, "Name not known")

    async with Fetcher(FAST, transport=httpx.MockTransport(fail)) as fetcher:
        result = await fetcher.fetch("desk", FeedState("desk", "http://no-such-host.test/"))
    assert result.error == (
        "cannot resolve the host name no-such-host.test; check the feed URL (or the DNS setup)"
    )


async def test_fetch_outside_async_with_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await Fetcher(FAST).fetch("desk", FeedState("desk", "http://127.0.0.1:1/"))


# --- concurrency --------------------------------------------------------------------------


async def fetch_many(
    server: FeedServer, settings: Settings, route: Route, count: int = 9
) -> list[FetchResult]:
    url = server.add("/many.xml", route)
    async with Fetcher(settings) as fetcher:
        states = [FeedState(f"f{i}", url) for i in range(count)]
        return await asyncio.gather(*(fetcher.fetch(s.feed_id, s) for s in states))


async def test_per_host_concurrency_is_bounded(server: FeedServer) -> None:
    results = await fetch_many(server, Settings(per_host=3), crowd(RSS, 3))
    assert all(r.status is FetchStatus.OK for r in results)
    assert server.max_in_flight == 3


async def test_overall_concurrency_is_bounded(server: FeedServer) -> None:
    results = await fetch_many(server, Settings(concurrency=2, per_host=4), crowd(RSS, 2))
    assert all(r.status is FetchStatus.OK for r in results)
    assert server.max_in_flight == 2


async def test_waiting_for_a_slot_does_not_count_against_the_deadline(server: FeedServer) -> None:
    # Four requests of 0.1 s each, one at a time, under a 0.25 s deadline: none may time out.
    settings = Settings(per_host=1, total_timeout=0.25)
    results = await fetch_many(server, settings, slow(RSS, 0.1), count=4)
    assert [r.status for r in results] == [FetchStatus.OK] * 4
    assert server.max_in_flight == 1


# --- retry_delay and Retry-After (pure) ---------------------------------------------------

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


def test_no_error_means_the_normal_interval() -> None:
    assert retry_delay(0, timedelta(minutes=15), None) == timedelta(minutes=15)


@pytest.mark.parametrize("errors", range(1, 8))
def test_backoff_doubles_within_equal_jitter_bounds(errors: int) -> None:
    rng = random.Random(errors)
    interval = timedelta(minutes=10)
    ceiling = min(interval * 2**errors, DAY)
    for _ in range(50):
        assert ceiling / 2 <= retry_delay(errors, interval, None, rng) <= ceiling


def test_backoff_starts_from_at_least_a_minute() -> None:
    assert retry_delay(1, timedelta(seconds=5), None, random.Random(1)) >= timedelta(minutes=1)


@pytest.mark.parametrize("errors", [12, 50, 10**6])
def test_backoff_is_capped_at_a_day(errors: int) -> None:
    delay = retry_delay(errors, HOUR, None, random.Random(0))
    assert DAY / 2 <= delay <= DAY


def test_retry_after_is_a_floor_and_still_capped() -> None:
    rng = random.Random(3)
    assert retry_delay(1, timedelta(minutes=1), 2 * HOUR, rng) == 2 * HOUR
    assert retry_delay(1, timedelta(minutes=1), 3 * DAY, rng) == DAY
    assert retry_delay(0, HOUR, 2 * HOUR) == 2 * HOUR


def test_jitter_spreads_and_is_reproducible_with_a_seed() -> None:
    draws = [retry_delay(3, HOUR, None, random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(7)
    spread = {retry_delay(3, HOUR, None, rng) for _ in range(100)}
    assert len(spread) == 100 and max(spread) - min(spread) > HOUR


@given(
    errors=st.integers(min_value=0, max_value=10**4),
    interval=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=7)),
    retry_after=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_retry_delay_always_within_bounds(
    errors: int, interval: timedelta, retry_after: timedelta | None, seed: int
) -> None:
    delay = retry_delay(errors, interval, retry_after, random.Random(seed))
    assert timedelta(0) < delay <= DAY
    if retry_after is not None:
        assert delay >= min(retry_after, DAY)
    if errors > 0:
        assert delay >= min(max(interval, timedelta(minutes=1)), DAY)


def test_parse_retry_after_forms() -> None:
    now = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)
    assert parse_retry_after("90", now) == timedelta(seconds=90)
    assert parse_retry_after("Tue, 01 Apr 2025 07:00:00 GMT", now) == HOUR
    assert parse_retry_after("Tue, 01 Apr 2025 05:00:00 GMT", now) == timedelta(0)  # past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-5", now) is None
