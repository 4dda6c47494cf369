"""uvicorn on a free port of 127.0.0.1, in this event loop: the one way tests serve an ASGI app over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import uvicorn
from starlette.types import ASGIApp


class _TestServer(uvicorn.Server):
    """A uvicorn server that leaves the test process's signal handlers alone: uvicorn's own would turn a
    SIGTERM (e.g. from `timeout`) into "stop serving" and keep a hung test run alive."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve_in_process(
    app: ASGIApp,
    *,
    lifespan: Literal["on", "off"] = "off",
    graceful_seconds: int = 3,
    within: float = 10.0,
    http: str | Callable[..., Any] = "auto",
) -> AsyncIterator[str]:
    """Serves `app` until the block ends and yields its base URL. In this loop, so a test can hold a handler
    on an asyncio.Event or look at the app's state while a request is in it. `lifespan="on"` runs the app's
    lifespan as `threadstore serve` does, and a startup that fails fails here. `http`: uvicorn's HTTP
    implementation ("auto", "h11", "httptools", or a protocol class as `threadstore serve` gives it)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan=lifespan,
        # uvicorn calls `http` as a factory; a functools.partial of a protocol class works but is not a
        # `type` to its annotations.
        http=cast(Any, http),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful_seconds,
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + within
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it served (did the app's startup fail?)")
        if time.monotonic() > deadline:
            task.cancel()
            raise RuntimeError(f"uvicorn did not start within {within} s")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
