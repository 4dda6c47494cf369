"""Event stream tests run the app in a real uvicorn server (in this process, on a free port) and read
`GET /api/events` with httpx over TCP: an endless streaming response needs a real connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import JWT_SECRET, Backend, CheckoutLedger, assert_no_leaks, make_settings
from threadstore.app import create_app
from threadstore.auth import issue_token
from threadstore.config import Settings
from threadstore.db.unit_of_work import Database
from threadstore.events.hub import Hub
from threadstore.http.middleware import RequestContextMiddleware

FRAME_TIMEOUT = 20.0  # generous: the machine is shared; a bound that is the point is asserted separately


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, user, None)}"}


@dataclass
class Frame:
    id: int | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None
    received: float = field(default_factory=time.monotonic)


class EventStream:
    """Reads SSE frames (events and comments) from a streaming httpx response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.ended = False

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
        self.ended = True
        return None

    async def event(self, within: float = FRAME_TIMEOUT) -> Frame | None:
        """The next event (comments skipped), or None when the stream ended."""
        while True:
            frame = await self.frame(within)
            if frame is None or frame.comment is None:
                return frame

    async def events(self, count: int, within: float = FRAME_TIMEOUT) -> list[Frame]:
        received = []
        for _ in range(count):
            frame = await self.event(within)
            assert frame is not None, f"the stream ended after {len(received)} of {count} events"
            received.append(frame)
        return received

    async def until_keep_alive(self, within: float = FRAME_TIMEOUT) -> list[Frame]:
        """Every event before the next keep-alive comment: all that was due has been sent by then."""
        received = []
        while True:
            frame = await self.frame(within)
            assert frame is not None, "the stream ended"
            if frame.comment == "keep-alive":
                return received
            if frame.comment is None:
                received.append(frame)


@dataclass
class Served:
    app: FastAPI
    url: str
    backend: Backend
    client: httpx.AsyncClient

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.event_hub
        return hub

    async def request(self, method: str, path: str, *, user: str, **kwargs: Any) -> httpx.Response:
        headers = {**auth(user), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

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
    async def stream(self, user: str, last_event_id: int | str | None = None) -> AsyncIterator[EventStream]:
        """An open stream, once the server registered it (its first comment arrived)."""
        headers = auth(user)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        async with (
            httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(30.0, read=None)) as client,
            client.stream("GET", "/api/events", headers=headers) as response,
        ):
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = EventStream(response)
            opened = await stream.frame()
            assert opened is not None and opened.comment == "connected", opened
            yield stream


class _TestServer(uvicorn.Server):
    """A uvicorn server that leaves the test process's signal handlers alone: uvicorn's own would turn a
    SIGTERM (e.g. from `timeout`) into "stop serving" and keep a hung test run alive."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(backend: Backend, settings: Settings) -> AsyncIterator[Served]:
    app = create_app(settings)
    asgi = RequestContextMiddleware(app, max_body_bytes=settings.max_body_bytes)
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=0, log_config=None, access_log=False, timeout_graceful_shutdown=3
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("the server did not start")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    ledger = CheckoutLedger(app.state.database.engine)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            yield Served(app=app, url=url, backend=backend, client=client)
    finally:
        server.should_exit = True
        await task
    await assert_no_leaks(ledger, backend)


FAST = {"event_keep_alive_seconds": 0.2, "event_poll_interval_seconds": 0.2}


@pytest.fixture
async def served(backend: Backend, tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Served]:
    async with serving(backend, make_settings(backend, tmp_path, **{**FAST, **settings_overrides})) as created:
        yield created
