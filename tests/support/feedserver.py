"""A real HTTP server on 127.0.0.1 (port 0, in a thread) serving feeds, misbehaving on purpose.

    with FeedServer({"/feed.xml": serve(RSS)}) as server:
        url = server.url("/feed.xml")
        ...  # fetch it
        assert server.requests_to("/feed.xml")[0].headers["user-agent"].startswith("monitor/")

A route is a function of one `Exchange` (the request, and the means to answer it); the
factories below build the behaviours the fetch stage must survive. Routes run in the server's
handler threads. Everything that waits (stall, drip, slow) waits on the server's closing event,
so closing the server ends it at once; closing also shuts the open connections, so no handler
thread outlives the `with` block. A route that fails other than by the client hanging up is
reported when the server closes, so a broken route cannot pass silently.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import socketserver
import sys
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

RSS_TYPE = "application/rss+xml; charset=utf-8"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as requested, query included
    headers: Mapping[str, str]  # lower-case names


class Exchange:
    """One request being answered; what a route gets."""

    def __init__(self, handler: _Handler, server: FeedServer) -> None:
        self._handler = handler
        self.server = server
        self.closing = server.closing
        self.path = handler.path
        self.headers = {name.lower(): value for name, value in handler.headers.items()}

    def send_head(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if "Content-Length" not in headers:
            # Without a length the body ends when the connection does.
            headers["Connection"] = "close"
            self._handler.close_connection = True
        self._handler.send_response(status)
        for name, value in headers.items():
            self._handler.send_header(name, value)
        self._handler.end_headers()

    def write(self, data: bytes) -> None:
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def send(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_head(status, {"Content-Length": str(len(body)), **(headers or {})})
        self.write(body)

    def wait(self, seconds: float | None) -> bool:
        """Sleep unless the server closes first; True when it is closing."""
        return self.closing.wait(seconds)


Route = Callable[[Exchange], None]


class FeedServer:
    """Serves `routes` (path -> Route; query strings are ignored when matching) until closed."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.closing = threading.Event()  # set when the server closes: waiting routes return
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # in-flight count or closing changed
        self._log: list[RecordedRequest] = []
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests being answered at once, over the lifetime
        self.connections = 0  # TCP connections accepted, over the lifetime (keep-alive tests)
        self._httpd = _HTTPServer(self)
        self.port: int = self._httpd.server_address[1]
        # A short poll interval: shutdown() waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.01,), name="feedserver"
        )
        self._thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, route: Route) -> str:
        """Serve `route` at `path`; returns its URL."""
        self.routes[path] = route
        return self.url(path)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def wait_for_in_flight(self, count: int, timeout: float) -> bool:
        """Block until `count` requests are being answered at once; False on timeout or close."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._in_flight >= count or self.closing.is_set(), timeout
            )
            return self._in_flight >= count

    def close(self) -> None:
        with self._changed:
            self.closing.set()
            self._changed.notify_all()
        self._httpd.shutdown()
        self._httpd.hang_up_all()
        self._httpd.server_close()  # joins the handler threads
        self._thread.join()
        if self._httpd.failures:
            raise AssertionError(f"a test route failed: {self._httpd.failures[0]!r}")

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _dispatch(self, handler: _Handler) -> None:
        exchange = Exchange(handler, self)
        route = self.routes.get(urlsplit(handler.path).path, not_found)
        with self._lock:
            self._log.append(RecordedRequest(handler.command, handler.path, exchange.headers))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._changed.notify_all()
        try:
            route(exchange)
        finally:
            with self._lock:
                self._in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real feed servers do
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is on FeedServer; stderr noise helps no one


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, owner: FeedServer) -> None:
        self.owner = owner
        self.failures: list[BaseException] = []
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.owner.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def hang_up_all(self) -> None:
        """Wake handler threads blocked on a keep-alive connection or a write."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # The client hanging up (a fetcher stops reading past its cap or deadline) is expected.
        if error is not None and not isinstance(error, OSError):
            self.failures.append(error)


# --- routes -------------------------------------------------------------------------------


def not_found(exchange: Exchange) -> None:
    exchange.send(404, b"not found", {"Content-Type": "text/plain"})


def serve(
    body: bytes,
    content_type: str = RSS_TYPE,
    headers: Mapping[str, str] | None = None,
    *,
    status: int = 200,
    encoding: str | None = None,
) -> Route:
    """Answer `status` with `body`; `encoding` ("gzip", "deflate", "raw-deflate") compresses it."""
    payload = compress(body, encoding) if encoding else body
    head = {"Content-Type": content_type, **(headers or {})}
    if encoding:
        head["Content-Encoding"] = "gzip" if encoding == "gzip" else "deflate"

    def route(exchange: Exchange) -> None:
        exchange.send(status, payload, head)

    return route


def status(code: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Route:
    """A bare status: 500, 410, 429 with {"Retry-After": "120"}..."""
    return serve(body, "text/plain", headers, status=code)


def with_etag(body: bytes, etag: str = '"v1"', content_type: str = RSS_TYPE) -> Route:
    """200 with an ETag; 304 when the request's If-None-Match names it."""

    def route(exchange: Exchange) -> None:
        if exchange.headers.get("if-none-match") == etag:
            exchange.send(304, headers={"ETag": etag})
        else:
            exchange.send(200, body, {"Content-Type": content_type, "ETag": etag})

    return route


def with_last_modified(
    body: bytes, stamp: str = "Wed, 21 Oct 2015 07:28:00 GMT", content_type: str = RSS_TYPE
) -> Route:
    """200 with Last-Modified; 304 when If-Modified-Since repeats it."""

    def route(exchange: Exchange) -> None:
        if exchange.headers.get("if-modified-since") == stamp:
            exchange.send(304)
        else:
            exchange.send(200, body, {"Content-Type": content_type, "Last-Modified": stamp})

    return route


def redirect(location: str, code: int = 301) -> Route:
    """A redirect (301, 302, 307, 308...) to `location`, which may be relative."""
    return status(code, {"Location": location})


def stall(first: bytes = b"<?xml") -> Route:
    """Headers and a first few bytes, then nothing until the server closes."""

    def route(exchange: Exchange) -> None:
        exchange.send_head(200, {"Content-Type": RSS_TYPE, "Content-Length": "1000"})
        exchange.write(first)
        exchange.wait(None)

    return route


def drip(body: bytes, every: float, chunk: int = 1) -> Route:
    """`body` in `chunk`-byte pieces, one every `every` s: each read is quick, the whole is not."""

    def route(exchange: Exchange) -> None:
        exchange.send_head(200, {"Content-Type": RSS_TYPE, "Content-Length": str(len(body))})
        for start in range(0, len(body), chunk):
            exchange.write(body[start : start + chunk])
            if exchange.wait(every):
                return

    return route


def slow(body: bytes, delay: float) -> Route:
    """Waits `delay` s before answering: keeps requests in flight to count them."""

    def route(exchange: Exchange) -> None:
        if not exchange.wait(delay):
            exchange.send(200, body, {"Content-Type": RSS_TYPE})

    return route


def crowd(body: bytes, size: int, linger: float = 0.1, timeout: float = 5.0) -> Route:
    """Holds the first requests until `size` are in flight together, then `linger` s more.

    Shows a concurrency bound: against a client limited to `size` at once, max_in_flight is
    exactly `size`; a client that is not limited sends more while the first ones linger (there
    is no event for "nothing else is coming", hence the short wait). Later requests pass.
    """
    opened = threading.Event()

    def route(exchange: Exchange) -> None:
        if not opened.is_set():
            exchange.server.wait_for_in_flight(size, timeout)
            opened.set()
            exchange.wait(linger)
        exchange.send(200, body, {"Content-Type": RSS_TYPE})

    return route


def huge(size: int, *, declare_length: bool = True) -> Route:
    """A plain body of `size` bytes, streamed; without a declared length it ends at close."""
    piece = b" " * 65536

    def route(exchange: Exchange) -> None:
        head = {"Content-Type": RSS_TYPE}
        if declare_length:
            head["Content-Length"] = str(size)
        exchange.send_head(200, head)
        for start in range(0, size, len(piece)):
            exchange.write(piece[: size - start])

    return route


def gzip_bomb(expanded: int = 64 * 1024 * 1024) -> Route:
    """A small gzip body (about expanded/1000 bytes) that inflates to `expanded` bytes."""
    body = bomb(expanded)
    return serve(body, headers={"Content-Encoding": "gzip"})


@cache
def bomb(expanded: int) -> bytes:
    """Gzipped zeros, built once per size, a megabyte at a time (never `expanded` in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros[: expanded - done]) for done in range(0, expanded, len(zeros))]
    return b"".join([*parts, packer.flush()])


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "raw-deflate":  # what some servers wrongly send as "deflate"
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(body) + packer.flush()
    raise ValueError(f"unknown encoding {encoding!r}")
