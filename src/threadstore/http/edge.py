"""Limits at the HTTP edge, before the app runs: how much of a request's head, for how long, on how many
connections. uvicorn (0.54, httptools) gives the keep-alive timeout; its httptools parser bounds neither the
size nor the count of headers, nor the time they take, and `limit_concurrency` counts connections only once
a request arrived (an idle one is never refused). The rest is this subclass of uvicorn's httptools protocol:
a few callbacks and one timer per connection, no parsing of its own. docs/architecture.md says why not another server.

A refusal here is bare HTTP (431, 408) or a closed connection: there is no request for the app to answer.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from threadstore import metrics
from threadstore.config import Settings


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int  # request line and header lines, as sent
    max_headers: int
    header_timeout: float  # seconds from a request's first byte (or the connection's opening) to its last header
    max_connections: int  # open connections per server process

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            settings.max_header_bytes, settings.max_headers, settings.header_timeout_seconds, settings.max_connections
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `threadstore serve` gives uvicorn. A partial rather than a subclass built here: with --workers
    the config is pickled into each worker, and a partial of a module-level class pickles by reference."""
    return {
        "http": functools.partial(EdgeProtocol, limits=EdgeLimits.from_settings(settings)),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
    }


class EdgeProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.reading_head = True  # no request yet, or the last one's body is complete: the next bytes are a head
        self.head_bytes = 0  # of the head being read, as received; a head completed in one read is measured whole
        self.head_started: float | None = None  # when the head being read began (loop time)
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            metrics.EDGE_REFUSALS.labels("connections").inc()
            self.transport.close()
            return
        # From the opening: a client that connects and sends nothing holds a descriptor too. One timer per
        # connection, moved lazily, rather than one per request: a request only notes when its head began.
        self.head_started = self.loop.time()
        self.head_timer = self.loop.call_later(self.limits.header_timeout, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.head_bytes += len(data)
            if self.head_started is None:  # the first bytes of a request on a kept-alive connection
                self.head_started = self.loop.time()
        super().data_received(data)
        if self.reading_head and self.head_bytes > self.limits.max_header_bytes and not self.transport.is_closing():
            metrics.EDGE_REFUSALS.labels("header_bytes").inc()
            self._refuse(431)  # still no end of the head: nothing more of it is buffered

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_started = None
        if len(self.headers) > self.limits.max_headers:
            metrics.EDGE_REFUSALS.labels("header_count").inc()
            self.app = _header_fields_too_large  # this request only: the answer closes the connection
        elif _head_size(self.url, self.headers) > self.limits.max_header_bytes:
            metrics.EDGE_REFUSALS.labels("header_bytes").inc()
            self.app = _header_fields_too_large
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True
        self.head_bytes = 0

    def _check_head(self) -> None:
        now, started, timeout = self.loop.time(), self.head_started, self.limits.header_timeout
        if self.transport.is_closing():
            self.head_timer = None
        elif started is None or now - started < timeout:  # no head under way, or one still in time
            self.head_timer = self.loop.call_at((now if started is None else started) + timeout, self._check_head)
        else:
            self.head_timer = None
            metrics.EDGE_REFUSALS.labels("header_timeout").inc()
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False  # a pipelined head is late while a response is under way: end after it
            else:
                self._refuse(408)

    def _refuse(self, status: int) -> None:
        self.transport.write(_BARE[status])
        self.transport.close()


def _head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    # As sent, up to optional whitespace: "GET " url " HTTP/1.1\r\n", then "name: value\r\n" per header.
    size = len(url) + 16 + 4 * len(headers)
    for name, value in headers:  # a loop, not sum() over a generator: this runs for every request
        size += len(name) + len(value)
    return size


_BARE = {
    status: f"HTTP/1.1 {status} {phrase}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
    for status, phrase in [(408, "Request Timeout"), (431, "Request Header Fields Too Large")]
}


async def _header_fields_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-length", b"0"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
