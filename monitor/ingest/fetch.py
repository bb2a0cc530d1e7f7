"""Fetch stage: the only module that makes HTTP requests.

`Fetcher.fetch` gets one feed and returns a `FetchResult`; a feed's own failure (DNS, refused
connection, TLS, timeout, HTTP error, oversized or corrupt body, redirect loop) is a result with
status ERROR and one line a user can act on, never an exception. In order, one fetch:

1. waits for a slot overall (`settings.concurrency`), then for each hop a slot on its host
   (`settings.per_host`), so callers may start every feed at once;
2. sends a conditional GET (If-None-Match / If-Modified-Since from the feed's state);
3. follows redirects itself, at most `settings.max_redirects`, refusing loops; a chain made
   only of 301/308 reports the final URL as `permanent_url`;
4. streams the raw body and inflates gzip/deflate itself under `settings.max_body_bytes`,
   so a gzip bomb is refused after at most the cap is produced, never inflated in memory;
5. compares the body's sha256 with the last one, so an unchanged body is NOT_MODIFIED even
   when the server ignores validators.

Requests go straight to httpx's transport (`httpx.AsyncHTTPTransport`), not through an
`httpx.AsyncClient`: the client's layers (defaults merged into each request, a cookie jar
written at every response, auth and redirect machinery) are work this module does itself or
does not want; a 304 took 1.16x the instructions through them. So no cookie is kept between
requests, as with feed readers generally; a proxy named by HTTP_PROXY, HTTPS_PROXY or
ALL_PROXY (NO_PROXY honoured) is used as the client used it (`proxy`).

Timeouts: httpx's connect and read timeouts bound each step; `settings.total_timeout` bounds
the time spent holding host slots for the whole fetch (all hops, body included), which also
stops a server that trickles bytes just fast enough to beat the read timeout. Time spent
queueing for a slot is not counted: a feed must not fail because its neighbours were slow.

The validators in every result (etag, last_modified, body_hash) are what the store should keep
after this fetch: errors carry the old ones forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.backoff import parse_retry_after
from monitor.errors import FetchError
from monitor.ingest.hostpool import HostPool
from monitor.ingest.inflate import ENCODINGS, _Inflater
from monitor.ingest.login import _login, authorization
from monitor.ingest.proxy import proxy_for
from monitor.ingest.refusals import THROTTLED, status_message, too_big
from monitor.models import Feed, FeedState, FetchResult, FetchStatus, Settings

__all__ = ["Fetcher"]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT = frozenset({301, 308})
CHUNK = 64 * 1024

_FAILURES = (FetchError, TimeoutError, httpx.HTTPError, httpx.InvalidURL, zlib.error)
Origin = tuple[str, str, int | None]  # scheme, host, port
LAZY_MODULES = ("httpcore", "h11", "anyio._backends._asyncio", "certifi")  # at the 1st request


class Fetcher:
    """Fetches feeds over keep-alive connections; use as `async with Fetcher(s) as f:`.

    Each request takes a single-connection transport of its host from a `HostPool` (see
    there why not one shared pool) and gives it back once the body is read. `transport`
    replaces them all (tests)."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._clients: HostPool[Origin, httpx.AsyncBaseTransport] | None = None
        self._overall = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._headers = {
            "User-Agent": settings.user_agent, "Accept": ACCEPT,
            "Accept-Encoding": ENCODINGS, "Connection": "keep-alive",
        }  # fmt: skip
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        self._extensions = {"timeout": timeout.as_dict()}

    async def __aenter__(self) -> Fetcher:
        tls = _tls_context()
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)

        def connection(origin: Origin) -> httpx.AsyncBaseTransport:
            if self._transport is not None:
                return self._transport
            proxy = proxy_for(origin[0], origin[1])
            return httpx.AsyncHTTPTransport(verify=tls, limits=one, proxy=proxy)

        self._clients = HostPool(connection, _close, idle_cap=self._settings.concurrency)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._clients is not None:
            await self._clients.aclose()
            self._clients = None

    @contextlib.asynccontextmanager
    async def slots(self, url: str) -> AsyncIterator[None]:
        """Hold a fetch's slots (overall, its host's) while a worker process fetches `url`."""
        async with self._overall, self._host_slot(urlsplit(url).hostname or url):
            yield

    async def fetch(self, feed_id: str, state: FeedState, feed: Feed | None = None) -> FetchResult:
        """Fetch one feed. Never raises for the feed's own failure: see the module docstring.
        `feed` brings the basic-auth login its `username_env`/`password_env` name, if any."""
        chain = _Chain(url=state.url)
        async with self._overall:
            try:
                chain.login = _login(feed_id, feed)
                chain.origin = _origin(httpx.URL(feed.url)) if feed and chain.login else None
                result = await self._follow(feed_id, state, chain)
            except _FAILURES as exc:
                error = " ".join(_failure(exc, chain.url, self._settings).split())
                result = _result(feed_id, state, chain.url, FetchStatus.ERROR, error=error)
        return replace(result, elapsed=round(chain.spent, 6))

    async def _follow(self, feed_id: str, state: FeedState, chain: _Chain) -> FetchResult:
        for _ in range(self._settings.max_redirects + 1):
            result = await self._hop(feed_id, state, chain)
            if result is not None:
                return chain.settle(result)
        raise FetchError(
            f"too many redirects (more than {self._settings.max_redirects}), last to {chain.url}",
            feed_id=feed_id,
            hint="update the feed URL to where it now lives",
        )

    async def _hop(self, feed_id: str, state: FeedState, chain: _Chain) -> FetchResult | None:
        """One request; None when it redirected (the chain then points at the next URL)."""
        clients = self._require_clients()
        request = self._request(chain, state)
        origin = _origin(request.url)
        async with self._host_slot(request.url.host):
            started = time.monotonic()
            client, clean = clients.take(origin), False
            try:
                async with asyncio.timeout(self._settings.total_timeout - chain.spent):
                    response = await client.handle_async_request(request)
                    try:
                        if response.status_code in REDIRECTS:
                            chain.redirect(feed_id, request.url, response)
                            answer = None
                        else:
                            answer = await self._answer(feed_id, state, chain.url, response)
                    finally:
                        await response.aclose()
                clean = True
                return answer
            finally:
                await clients.give(origin, client, reusable=clean)
                chain.spent += time.monotonic() - started

    def _request(self, chain: _Chain, state: FeedState) -> httpx.Request:
        """The GET of the chain's URL: the project's headers, the conditional ones, the login
        if this URL may have it, and the timeouts."""
        url = httpx.URL(chain.url)
        headers = self._headers | _conditional(state)
        login = chain.auth(url)
        if login is not None:
            headers["Authorization"] = authorization(*login)
        return httpx.Request("GET", url, headers=headers, extensions=self._extensions)

    async def _answer(
        self, feed_id: str, state: FeedState, url: str, response: httpx.Response
    ) -> FetchResult:
        code = response.status_code
        if code == 304:
            # It has no body, but reading its end is what lets the connection be reused.
            async for _ in response.aiter_raw():
                pass
            return _not_modified(feed_id, state, url, response)
        if 200 <= code < 300:
            body = await self._read_body(feed_id, response)
            return _with_body(feed_id, state, url, response, body)
        return _refused(feed_id, state, url, response)

    async def _read_body(self, feed_id: str, response: httpx.Response) -> bytes:
        cap = self._settings.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_big(feed_id, cap, f"the server announces {int(declared):,} bytes")
        inflater = _Inflater(feed_id, response.headers.get("content-encoding", ""))
        body = bytearray()
        async for raw in response.aiter_raw(CHUNK):
            body += inflater.feed(raw, cap + 1 - len(body))
            if len(body) > cap:
                raise too_big(feed_id, cap, "the body is larger once decompressed")
        body += inflater.finish()
        if len(body) > cap:
            raise too_big(feed_id, cap, "the body is larger once decompressed")
        return bytes(body)

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self._settings.per_host)
        return self._hosts[host]

    def _require_clients(self) -> HostPool[Origin, httpx.AsyncBaseTransport]:
        if self._clients is None:
            raise RuntimeError("Fetcher is not open: use `async with Fetcher(settings) as f:`")
        return self._clients


@dataclass
class _Chain:
    """The redirect chain of one fetch, and the time spent on it so far."""

    url: str
    spent: float = 0.0
    codes: list[int] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    login: tuple[str, str] | None = None
    origin: Origin | None = None  # of the URL in feeds.yaml

    def auth(self, url: httpx.URL) -> tuple[str, str] | None:
        """The login, sent only to the origin of the URL the user wrote: a redirect (even a
        permanent one) to another host must not carry it there."""
        return self.login if _origin(url) == self.origin else None

    def redirect(self, feed_id: str, url: httpx.URL, response: httpx.Response) -> None:
        location = response.headers.get("location")
        if not location:
            raise FetchError(
                f"HTTP {response.status_code} redirect without a Location header from {self.url}",
                feed_id=feed_id,
                hint="the server is misconfigured; try the feed URL in a browser",
            )
        target = str(url.join(location.strip()))
        self.seen.add(self.url)
        if target in self.seen:
            raise FetchError(
                f"redirect loop: {self.url} sends back to {target}",
                feed_id=feed_id,
                hint="the server is misconfigured; try the feed URL in a browser",
            )
        self.codes.append(response.status_code)
        self.url = target

    def settle(self, result: FetchResult) -> FetchResult:
        """Report a permanent move, but only once the new URL has actually served the feed."""
        moved = bool(self.codes) and all(code in PERMANENT for code in self.codes)
        if moved and result.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED):
            return replace(result, permanent_url=self.url)
        return result


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA store (~20 ms of CPU)."""
    return httpx.create_ssl_context()


def _origin(url: httpx.URL) -> Origin:
    return url.scheme, url.host, url.port


async def _close(transport: httpx.AsyncBaseTransport) -> None:
    await transport.aclose()


def _conditional(state: FeedState) -> dict[str, str]:
    # Header values must be ASCII for httpx; a mangled stored validator is just not sent.
    headers = {}
    if state.etag and state.etag.isascii():
        headers["If-None-Match"] = state.etag
    if state.last_modified and state.last_modified.isascii():
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _result(
    feed_id: str,
    state: FeedState,
    url: str,
    status: FetchStatus,
    response: httpx.Response | None = None,
    **changes: Any,
) -> FetchResult:
    """A result that keeps the feed's validators unless `changes` says otherwise (built
    once: a frozen dataclass's `replace` is a new instance each time, three a fetch)."""
    fields: dict[str, Any] = {
        "etag": state.etag, "last_modified": state.last_modified, "body_hash": state.body_hash
    }  # fmt: skip
    if response is not None:
        fields["http_status"] = response.status_code
        fields["headers"] = {name.lower(): value for name, value in response.headers.items()}
    return FetchResult(feed_id=feed_id, status=status, url=url, **(fields | changes))


def _with_body(
    feed_id: str, state: FeedState, url: str, response: httpx.Response, body: bytes
) -> FetchResult:
    digest = hashlib.sha256(body).hexdigest()
    # Same bytes as last time: nothing to parse, whatever the validators say (many servers
    # send an ETag yet ignore If-None-Match).
    unchanged = digest == state.body_hash
    status = FetchStatus.NOT_MODIFIED if unchanged else FetchStatus.OK
    body_or_none = None if unchanged else body
    etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
    return _result(
        feed_id, state, url, status, response,
        body=body_or_none, etag=etag, last_modified=modified, body_hash=digest,
    )  # fmt: skip


def _not_modified(
    feed_id: str, state: FeedState, url: str, response: httpx.Response
) -> FetchResult:
    # A 304 may carry fresh validators; otherwise the ones we sent still hold.
    etag = response.headers.get("etag", state.etag)
    modified = response.headers.get("last-modified", state.last_modified)
    status = FetchStatus.NOT_MODIFIED
    return _result(feed_id, state, url, status, response, etag=etag, last_modified=modified)


def _refused(feed_id: str, state: FeedState, url: str, response: httpx.Response) -> FetchResult:
    code = response.status_code
    status = FetchStatus.GONE if code == 410 else FetchStatus.ERROR
    wait = parse_retry_after(response.headers.get("retry-after")) if code in THROTTLED else None
    message = status_message(code, response.reason_phrase, wait)
    return _result(feed_id, state, url, status, response, retry_after=wait, error=message)


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and what it wraps (httpx -> httpcore -> OSError/SSLError)."""
    for _ in range(10):  # a bound, in case a chain ever loops
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__


def _failure(exc: BaseException, url: str, settings: Settings) -> str:
    """What went wrong, for the user: the cause and what to do about it."""
    host = urlsplit(url).hostname or url
    if isinstance(exc, FetchError):
        return f"{exc.message}; {exc.hint}" if exc.hint else exc.message
    if isinstance(exc, TimeoutError):  # our whole-request deadline, not one of httpx's
        return f"took more than {settings.total_timeout:g} s in all; the server is too slow"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out after {settings.connect_timeout:g} s connecting to {host}; is it down?"
    if isinstance(exc, httpx.ReadTimeout):
        slow = "the server is slow or hanging"
        return f"timed out after {settings.read_timeout:g} s reading the response; {slow}"
    if isinstance(exc, httpx.ConnectError):
        return _connect_failure(exc, url)
    return _other_failure(exc, url)


def _connect_failure(exc: httpx.ConnectError, url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the TLS certificate of {host} is invalid ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {host} failed ({cause.reason}); check http(s):// in the URL"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name {host}; check the feed URL (or the DNS setup)"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {parts.netloc}; the server is down or the URL is wrong"
    return f"cannot connect to {host}: {exc or type(exc).__name__}"


def _other_failure(exc: BaseException, url: str) -> str:
    host = urlsplit(url).hostname or url
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out talking to {host}; the server is slow or unreachable"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"cannot fetch {url!r}: {detail}; check the feed URL"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} broke off or sent invalid HTTP ({detail}); monitor will retry later"
    if isinstance(exc, zlib.error):
        return f"the compressed body from {host} is corrupt ({detail}); monitor will retry later"
    return f"request to {host} failed ({type(exc).__name__}: {detail}); monitor will retry later"
