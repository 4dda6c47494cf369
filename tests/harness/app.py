"""The app in this process, built as `threadstore serve` builds it, with a client, and judged for leaks
after it shut down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
from sqlalchemy import event

from tests.harness.client import Api
from tests.harness.databases import Backend, idle_in_transaction, use_session_defaults
from tests.harness.server import serve_in_process
from threadstore.app import build_asgi
from threadstore.config import Settings
from threadstore.http.edge import uvicorn_options

# The app's own background tasks (event delivery, housekeeping) by name: their short units of work may
# hold a pooled connection at any moment, which says nothing about what a request holds.
BACKGROUND_TASKS = ("event-", "maintenance-")

ASGI_URL = "http://threadstore.test"


@asynccontextmanager
async def running_api(
    backend: Backend,
    settings: Settings,
    *,
    real_socket: bool = False,
    http: Literal["auto", "h11", "httptools", "edge"] = "auto",
) -> AsyncIterator[Api]:
    """The app and a client of it. Through httpx's ASGI transport by default (no socket: fast); with
    `real_socket`, uvicorn serves it on a TCP port and runs its lifespan, which an endless event stream or a
    client dropping its connection needs; `http` is uvicorn's HTTP implementation, "edge" the one `threadstore
    serve` runs (httptools with the edge limits of http/edge.py). After shutdown, either way: every
    pooled connection was returned and, on PostgreSQL, no transaction of this run is left open."""
    await use_session_defaults(backend, settings)
    app, asgi = build_asgi(settings)
    if real_socket:
        protocol = uvicorn_options(settings)["http"] if http == "edge" else http
        async with serve_in_process(asgi, lifespan="on", http=protocol) as url:
            ledger = CheckoutLedger(app.state.database.engine)
            async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
                yield Api(client, backend, url, real_socket=True, in_process=app)
    else:
        async with app.router.lifespan_context(app):
            ledger = CheckoutLedger(app.state.database.engine)
            transport = httpx.ASGITransport(app=asgi)
            async with httpx.AsyncClient(transport=transport, base_url=ASGI_URL) as client:
                yield Api(client, backend, ASGI_URL, real_socket=False, in_process=app)
    # Judged after shutdown, when background work has stopped.
    await assert_no_leaks(ledger, backend)


class CheckoutLedger:
    """Counts pool checkouts and checkins through the pool's own events.

    `pool.checkedout()` cannot be read after shutdown (dispose() resets it) and reading it before shutdown
    races with background work, so the ledger is what the leak check reads."""

    def __init__(self, engine: Any) -> None:
        self._out: set[int] = set()  # connection records, so a repeated checkin cannot hide a leak
        event.listen(engine.sync_engine, "checkout", self._checkout)
        event.listen(engine.sync_engine, "checkin", self._checkin)

    @property
    def outstanding(self) -> int:
        return len(self._out)

    def _checkout(self, _dbapi: Any, record: Any, *_: Any) -> None:
        self._out.add(id(record))

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        self._out.discard(id(record))


async def assert_no_leaks(ledger: CheckoutLedger, backend: Backend) -> None:
    # Give cancelled tasks a moment to finish their shielded cleanup before judging.
    for _ in range(50):
        if ledger.outstanding == 0:
            break
        await asyncio.sleep(0.02)
    assert ledger.outstanding == 0, f"{ledger.outstanding} connection(s) not returned to the pool"
    if backend.is_postgres:
        assert await idle_in_transaction(backend) == [], "a transaction was left open"
