"""A farm of generated RSS 2.0 feeds, served on loopback by a separate process.

The poll benchmark needs many realistic feeds and a server that is never the bottleneck, so:
- every document is generated once, in the server process, from a seeded random generator
  (the same arguments give the same bytes): title, a link with a query string, a guid, a
  pubDate, categories and a ~1 KB HTML description mixing English with some Chinese, Japanese
  and Korean;
- the server is a bare asyncio protocol speaking just enough HTTP/1.1 (GET, keep-alive,
  ETag / If-None-Match -> 304) with every response prebuilt as one bytes object, so serving
  costs a dictionary lookup and a socket write;
- it runs in its own process so its CPU time never competes with the poller's event loop
  (it still shares the machine's cores, which the benchmark states);
- `raw_fetch_all` is a plain keep-alive client (no HTTP library) that measures how fast the
  farm serves everything, to show the farm's share of a poll is small.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import random
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from types import TracebackType
from xml.sax.saxutils import escape

HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # seconds for the server process to build the farm and listen
STOP_TIMEOUT = 10.0  # seconds for it to exit once asked

_EN_TEXT = (
    "ministry officials said talks would resume after the coast guard reported vessels near "
    "the disputed islands while lawmakers debated export controls on advanced chips and the "
    "defence minister warned that drills around the strait raised the risk of miscalculation "
    "envoys met at the United Nations to discuss sanctions humanitarian access and a ceasefire "
    "analysts expect the summit to focus on trade supply chains semiconductors and maritime "
    "security as allies coordinate their response to missile launches and cyber attacks"
)
_EN_WORDS = tuple(_EN_TEXT.split())
_CJK_PHRASES = (
    "台湾海峡の緊張が高まる",
    "外務省は懸念を表明した",
    "防衛省によると",
    "中国海警局の船舶",
    "北朝鮮が弾道ミサイルを発射",
    "日中首脳会談",
    "輸出規制の強化",
    "半導体の供給網",
    "联合国安理会召开紧急会议",
    "解放军在台湾周边举行演习",
    "外交部发言人表示",
    "北京与东京的关系",
    "북한이 미사일을 발사했다",
    "외교부는 우려를 표명했다",
    "한미 연합훈련",
    "서울과 도쿄의 정상회담",
)
_CATEGORIES = ("Asia", "Diplomacy", "Defence", "Trade", "Korea", "Taiwan", "Japan", "UN")
_LANGUAGES = ("en", "en", "en", "ja", "zh", "ko")
DESCRIPTION_BYTES = 400  # bytes of HTML description to reach before stopping: items end near 1 KB


def feed_path(index: int) -> str:
    return f"/feeds/{index:04d}.xml"


def _sentence(rng: random.Random, cjk_share: float) -> str:
    if rng.random() < cjk_share:
        return "。".join(rng.sample(_CJK_PHRASES, 2)) + "。"
    words = rng.choices(_EN_WORDS, k=rng.randint(10, 18))
    return " ".join(words).capitalize() + "."


def _description(rng: random.Random, link: str, cjk_share: float) -> str:
    """~1 KB of HTML: paragraphs with inline markup, a link and sometimes an image."""
    parts: list[str] = []
    size = 0
    while size < DESCRIPTION_BYTES:
        text = escape(_sentence(rng, cjk_share))
        if rng.random() < 0.3:
            text = f"<strong>{text}</strong>"
        elif rng.random() < 0.2:
            text = f'<a href="{escape(link)}&amp;ref=p{len(parts)}">{text}</a>'
        paragraph = f"<p>{text} <em>{escape(_sentence(rng, cjk_share))}</em></p>"
        parts.append(paragraph)
        size += len(paragraph.encode())
    if rng.random() < 0.5:
        parts.insert(1, f'<p><img src="{escape(link)}&amp;img=1" alt="photo" width="640"></p>')
    return "\n".join(parts)


def _item(feed: int, number: int, published: datetime, rng: random.Random, lang: str) -> str:
    cjk_share = 0.15 if lang == "en" else 0.6
    title = _sentence(rng, 0.1 if lang == "en" else 0.7).rstrip(".")[:120]
    slug = "-".join(rng.choices(_EN_WORDS, k=4))
    link = (
        f"https://outlet{feed:04d}.example.org/{published:%Y/%m/%d}/{slug}"
        f"?id={feed * 100_000 + number}&utm_source=rss&utm_medium=feed"
    )
    description = _description(rng, link, cjk_share)
    # Half the feeds escape their HTML, half wrap it in CDATA: both are common in the wild.
    body = f"<![CDATA[{description}]]>" if feed % 2 else escape(description)
    categories = "".join(f"<category>{c}</category>" for c in rng.sample(_CATEGORIES, 2))
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">farm-{feed:04d}-{number:05d}</guid>'
        f"<pubDate>{format_datetime(published)}</pubDate>{categories}"
        f"<description>{body}</description></item>\n"
    )


def build_feed(index: int, items: int, now: datetime) -> bytes:
    """One RSS 2.0 document: `items` entries, newest first, one every 20 minutes up to `now`."""
    rng = random.Random(index)
    lang = _LANGUAGES[index % len(_LANGUAGES)]
    entries = "".join(
        _item(index, n, now - timedelta(minutes=20 * n), rng, lang) for n in range(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Outlet {index:04d} world news</title>"
        f"<link>https://outlet{index:04d}.example.org/</link>"
        f"<description>Generated feed {index} for the poll benchmark</description>"
        f"<language>{lang}</language><lastBuildDate>{format_datetime(now)}</lastBuildDate>\n"
        f"{entries}</channel></rss>\n"
    ).encode()


@dataclass(frozen=True)
class _Document:
    """Prebuilt answers for one path: serving is a lookup and one write."""

    etag: bytes
    ok: bytes
    not_modified: bytes


def _document(body: bytes, last_modified: str) -> _Document:
    etag = b'"' + hashlib.sha256(body).hexdigest()[:16].encode() + b'"'
    common = b"ETag: " + etag + b"\r\nLast-Modified: " + last_modified.encode() + b"\r\n"
    ok = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
        + common
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return _Document(etag, ok, b"HTTP/1.1 304 Not Modified\r\n" + common + b"\r\n")


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _HttpProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1 for GETs without a body, keep-alive and If-None-Match."""

    def __init__(self, documents: Mapping[bytes, _Document]) -> None:
        self._documents = documents
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0 and self._transport is not None:
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self._transport is not None
        lines = head.split(b"\r\n")
        request = lines[0].split(b" ")
        if len(request) != 3 or request[0] != b"GET":
            self._transport.write(_BAD_REQUEST)
            self._close()
            return
        headers = dict(_header(line) for line in lines[1:])
        self._transport.write(_response(self._documents.get(request[1]), headers))
        if headers.get(b"connection", b"").lower() == b"close" or request[2] != b"HTTP/1.1":
            self._close()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name.strip().lower(), value.strip()


def _response(document: _Document | None, headers: Mapping[bytes, bytes]) -> bytes:
    if document is None:
        return _NOT_FOUND
    if document.etag in headers.get(b"if-none-match", b"").split(b","):
        return document.not_modified
    return document.ok


def _documents(feeds: int, items: int, now: datetime) -> dict[bytes, _Document]:
    last_modified = format_datetime(now, usegmt=True)
    return {
        feed_path(i).encode(): _document(build_feed(i, items, now), last_modified)
        for i in range(feeds)
    }


async def _serve(feeds: int, items: int, now: datetime, conn: Connection) -> None:
    documents = _documents(feeds, items, now)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _HttpProtocol(documents), HOST, 0, backlog=1024, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    size = sum(len(d.ok) for d in documents.values())
    conn.send((port, size))
    # Blocks a helper thread, not the loop, until the benchmark says stop (or goes away).
    with contextlib.suppress(EOFError):
        await loop.run_in_executor(None, conn.recv)
    server.close()
    await server.wait_closed()


def _server_main(feeds: int, items: int, now: datetime, conn: Connection) -> None:
    """Entry point of the server process; reports its own peak memory on the way out."""
    asyncio.run(_serve(feeds, items, now, conn))
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    conn.close()


class Farm:
    """`with Farm(feeds, items) as farm:` serves the farm at `farm.url(i)` until the block ends."""

    def __init__(self, feeds: int, items: int, now: datetime | None = None) -> None:
        self.feeds = feeds
        self.items = items
        # Rounded so a rebuilt farm (same arguments) gives the same bytes within an hour.
        self.now = now or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.port = 0
        self.size = 0  # bytes of all 200 responses, headers included
        self.server_maxrss_kib: int | None = None  # known once closed
        # spawn: the server starts from a clean interpreter, sharing no memory or threads.
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_server_main, args=(feeds, items, self.now, child), daemon=True
        )
        self._child = child

    def __enter__(self) -> Farm:
        self._process.start()
        self._child.close()
        if not self._conn.poll(START_TIMEOUT):
            self.close()
            raise RuntimeError(f"the feed farm did not start within {START_TIMEOUT:g} s")
        self.port, self.size = self._conn.recv()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The server process (not part of what is measured)."""
        return self._process.pid or 0

    def url(self, index: int) -> str:
        return f"http://{HOST}:{self.port}{feed_path(index)}"

    def close(self) -> None:
        """Stop the server process, by force if it does not exit in time."""
        if not self._process.is_alive():
            return
        try:
            self._conn.send("stop")
            if self._conn.poll(STOP_TIMEOUT):
                self.server_maxrss_kib = self._conn.recv()
        except (BrokenPipeError, EOFError, ConnectionResetError):
            pass
        self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


@dataclass(frozen=True)
class RawRun:
    """What `raw_fetch_all` saw: wall time, statuses, body bytes, and the bodies' ETags."""

    seconds: float
    statuses: tuple[int, ...]
    size: int  # body bytes
    etags: Mapping[str, str]
    bodies: Mapping[str, bytes]


async def _raw_get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, etag: str | None
) -> tuple[int, str, bytes]:
    conditional = f"If-None-Match: {etag}\r\n" if etag else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{conditional}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(_header(line.encode()) for line in lines[1:] if line)
    length = int(fields.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    return int(lines[0].split(" ")[1]), fields.get(b"etag", b"").decode(), body


async def _raw_worker(
    port: int, paths: Sequence[str], etags: Mapping[str, str], keep: bool, run: _RawTally
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for path in paths:
            status, etag, body = await _raw_get(reader, writer, path, etags.get(path))
            run.add(path, status, etag, body, keep)
    finally:
        writer.close()
        await writer.wait_closed()


class _RawTally:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.size = 0
        self.etags: dict[str, str] = {}
        self.bodies: dict[str, bytes] = {}

    def add(self, path: str, status: int, etag: str, body: bytes, keep: bool) -> None:
        self.statuses.append(status)
        self.size += len(body)
        self.etags[path] = etag
        if keep:
            self.bodies[path] = body


async def raw_fetch_all(
    port: int,
    paths: Sequence[str],
    *,
    connections: int,
    etags: Mapping[str, str] | None = None,
    keep_bodies: bool = False,
) -> RawRun:
    """GET every path over `connections` keep-alive sockets; conditional when given `etags`."""
    tally = _RawTally()
    shares = [paths[i::connections] for i in range(connections)]
    t0 = time.perf_counter()
    await asyncio.gather(
        *(_raw_worker(port, share, etags or {}, keep_bodies, tally) for share in shares if share)
    )
    seconds = time.perf_counter() - t0
    return RawRun(seconds, tuple(tally.statuses), tally.size, tally.etags, tally.bodies)
