"""`Api`, the one client of the service in tests, and the reader of its event streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from tests.harness.databases import JWT_SECRET, Backend
from threadstore.auth import issue_token
from threadstore.db.unit_of_work import Database
from threadstore.events.hub import Hub

FRAME_TIMEOUT = 20.0  # generous: the machine is shared; a bound that is the point is asserted separately

# The type of the `create_thread` fixture: a thread of the test's user, or of `_user=`.
Factory = Callable[..., Awaitable[dict[str, Any]]]


def bearer(user: str, secret: str = JWT_SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(secret, user, None)}"}


@dataclass
class Api:
    """A client of the service. Built by `running_api` (the app in this process: `app`, `database` and `hub`
    are its internals, for assertions and fault injection) or by `ServeProcess` (another process: HTTP only).
    `real_socket` says whether requests cross a TCP connection; `stream` needs one."""

    client: httpx.AsyncClient
    backend: Backend
    base_url: str
    real_socket: bool
    in_process: FastAPI | None = None
    jwt_secret: str = JWT_SECRET

    @property
    def app(self) -> FastAPI:
        if self.in_process is None:
            raise AssertionError("this service runs in another process: only its HTTP API can be reached")
        return self.in_process

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.event_hub
        return hub

    @property
    def port(self) -> int:
        port = httpx.URL(self.base_url).port
        assert self.real_socket and port is not None, "served through the ASGI transport: there is no port"
        return port

    def auth(self, user: str) -> dict[str, str]:
        return bearer(user, self.jwt_secret)

    async def request(self, method: str, url: str, *, user: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(user), **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def create_thread(self, user: str, **body: Any) -> dict[str, Any]:
        response = await self.request("POST", "/api/threads", user=user, json=body)
        assert response.status_code == 201, response.text
        thread: dict[str, Any] = response.json()
        return thread

    async def append(self, user: str, thread_id: str, content: str = "hello") -> dict[str, Any]:
        response = await self.request(
            "POST", f"/api/threads/{thread_id}/messages", user=user, json={"content": content}
        )
        assert response.status_code == 201, response.text
        message: dict[str, Any] = response.json()
        return message

    @asynccontextmanager
    async def stream(
        self,
        user: str,
        last_event_id: int | str | None = None,
        *,
        token: str | None = None,
        thread_id: str | None = None,
    ) -> AsyncIterator[EventStream]:
        """An open `GET /api/events`, once the server registered it (its first comment arrived). `token`: the
        bearer token to use instead of one without expiry. `thread_id`: a stream of that thread's events."""
        # httpx's ASGI transport hands over a response only when the app has finished it; a stream never does.
        assert self.real_socket, "an event stream needs a real socket: running_api(..., real_socket=True)"
        headers = self.auth(user) if token is None else {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        params = {} if thread_id is None else {"thread_id": thread_id}
        # A client of its own: open streams must not take the request client's pooled connections.
        async with (
            httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(30.0, read=None)) as client,
            client.stream("GET", "/api/events", headers=headers, params=params) as response,
        ):
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = EventStream(response)
            opened = await stream.frame()
            assert opened is not None and opened.comment == "connected" and opened.id is not None, opened
            stream.opened = opened
            yield stream


@dataclass
class Frame:
    id: int | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None
    retry: int | None = None
    received: float = field(default_factory=time.monotonic)


class EventStream:
    """Reads SSE frames (events and comments) from a streaming httpx response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.ended = False
        self.opened: Frame | None = None  # the first frame: names the position the stream starts after

    async def frame(self, within: float = FRAME_TIMEOUT) -> Frame | None:
        """The next frame, or None when the server ended the stream."""
        return await asyncio.wait_for(self._next_frame(), within)

    async def _next_frame(self) -> Frame | None:
        current = Frame()
        seen = False
        async for line in self._lines:
            if line == "":
                if seen:
                    current.received = time.monotonic()
                    return current
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                current.comment = value
            elif name == "id":
                current.id = int(value)
            elif name == "event":
                current.event = value
            elif name == "data":
                current.data = orjson.loads(value)
            elif name == "retry":
                current.retry = int(value)
        self.ended = True
        return None

    async def event(self, within: float = FRAME_TIMEOUT) -> Frame | None:
        """The next event (comments and `retry:` skipped), or None when the stream ended."""
        while True:
            frame = await self.frame(within)
            if frame is None or frame.event is not None:
                return frame

    async def events(self, count: int, within: float = FRAME_TIMEOUT) -> list[Frame]:
        received: list[Frame] = []
        for _ in range(count):
            frame = await self.event(within)
            assert frame is not None, f"the stream ended after {len(received)} of {count} events"
            received.append(frame)
        return received

    async def until_end(self, within: float) -> list[Frame]:
        """Every frame until the server ends the stream, which it must do within `within` seconds."""
        frames: list[Frame] = []
        async with asyncio.timeout(within):
            while (frame := await self.frame()) is not None:
                frames.append(frame)
        return frames

    async def until_keep_alive(self, within: float = FRAME_TIMEOUT) -> list[Frame]:
        """Every event before the next keep-alive comment: all that was due has been sent by then."""
        received: list[Frame] = []
        while True:
            frame = await self.frame(within)
            assert frame is not None, "the stream ended"
            if frame.comment == "keep-alive":
                return received
            if frame.event is not None:
                received.append(frame)
