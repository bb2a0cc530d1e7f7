"""A raw TCP server on 127.0.0.1 (port 0) for servers that misbehave below the protocol level.

    with LineServer(silent) as mute:         # accepts, never says a word
        ...  # point an SMTP receiver at mute.port
        assert mute.wait_for_connections(1, WAIT)

A handler is a coroutine of (reader, writer, server); it runs on the server's own event loop
in a thread. `silent` accepts and never writes until the server closes; `echoing_smtp` speaks
just enough SMTP to refuse a login and quote back the AUTH lines it got, as some servers do.
Closing the server ends every handler at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "LineServer"], Awaitable[None]]


class LineServer:
    """Runs `handler` for every connection until closed; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.connections = 0  # accepted so far
        self.open = 0  # still connected (the handler has not returned)
        self.lines: list[str] = []  # what clients sent, for handlers that read lines
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._closing: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()  # one per connection, until it ends
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="lineserver")
        self._thread.start()
        ready.wait()
        assert self._server is not None
        self.port: int = self._server.sockets[0].getsockname()[1]

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._closing = asyncio.Event()
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            ready.set()
            await self._closing.wait()
            self._server.close()
            # Let every connection's task see the closing and end before the loop goes.
            await asyncio.gather(*self._clients, return_exceptions=True)

        self._loop.run_until_complete(start())
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)
        with self._changed:
            self.connections += 1
            self.open += 1
            self._changed.notify_all()
        assert self._closing is not None
        work = asyncio.ensure_future(self._handler(reader, writer, self))
        closing = asyncio.ensure_future(self._closing.wait())
        await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (work, closing):
            pending.cancel()
        await asyncio.gather(work, closing, return_exceptions=True)
        writer.close()
        with self._changed:
            self.open -= 1
            self._changed.notify_all()

    def heard(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)

    async def closed(self) -> None:
        """For handlers: wait until the server closes."""
        assert self._closing is not None
        await self._closing.wait()

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.connections >= count, timeout)

    def wait_for_open(self, count: int, timeout: float) -> bool:
        """Block until exactly `count` connections are open; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.open == count, timeout)

    def close(self) -> None:
        if self._closing is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._closing.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> LineServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def silent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LineServer
) -> None:
    """Accept and say nothing: an SMTP client waits for a greeting that never comes. Ends
    when the client hangs up (it reads until then), so `open` shows when it gave up."""
    await reader.read()


def echoing_smtp(mechanisms: str) -> Handler:
    """An SMTP server offering AUTH `mechanisms` ("PLAIN", "LOGIN") that refuses every login
    with a 535 quoting the client's AUTH line (and for LOGIN, the password line too)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LineServer
    ) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await say("220 echo.invalid ESMTP")
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            server.heard(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await say(f"250-echo.invalid\r\n250 AUTH {mechanisms}")
            elif line.upper().startswith("AUTH LOGIN"):
                await say("334 UGFzc3dvcmQ6")  # "Password:"
                answer = (await reader.readline()).decode().rstrip("\r\n")
                server.heard(answer)
                await say(f"535 5.7.8 bad credentials in '{line}' then '{answer}'")
            elif verb == "AUTH":
                await say(f"535 5.7.8 bad credentials in '{line}'")
            elif verb == "QUIT":
                await say("221 bye")
                return
            else:
                await say("503 5.5.1 login first")

    return handler
