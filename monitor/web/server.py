"""The console's HTTP server: uvicorn in a thread of its own, with its own event loop.

The service's loop polls and sends; the console (and `/healthz`) must answer even when that
loop is busy or stuck, so they do not share it. The socket is bound here, before the thread
starts, so a port in use is a clear error at once and port 0's choice is known.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from starlette.applications import Starlette

from monitor.errors import MonitorError
from monitor.web.app import create_app
from monitor.web.config import WebConfig

log = logging.getLogger("monitor.web")
STOP_WAIT = 3.0  # seconds the server gets to finish answering before the thread is left


class WebServer:
    def __init__(self, host: str, port: int, app: Starlette) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host.strip("[]"), port))
        except OSError as error:
            self._socket.close()
            raise MonitorError(
                f"cannot serve the console, /healthz and /metrics on {host}:{port}: "
                f"{error.strerror or error}",
                hint="choose another port (0 picks a free one) or stop what uses it",
            ) from error
        self._socket.listen(128)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=5
        )
        self._server = uvicorn.Server(config)
        self._app = app
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_WAIT)
        self._socket.close()
        console = getattr(self._app.state, "console", None)
        if console is not None:
            console.close()


def start_console(config: WebConfig, port: int) -> WebServer:
    """The console (with /healthz and /metrics when `config` has them), serving on
    `config.host`:`port` from its own thread."""
    server = WebServer(config.host, port, create_app(config))
    server.start()
    return server
