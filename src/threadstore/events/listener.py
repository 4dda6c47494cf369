"""PostgreSQL LISTEN: how an instance learns at once that another instance published events.

One dedicated connection outside the pool (LISTEN is session state a pooled connection must not carry; it
is never in a transaction), straight to PostgreSQL: through a pooler in transaction mode the LISTEN would
register on a server session that other clients' transactions then run on.

A NOTIFY is only a wake-up: the hub reads the events themselves, and polls anyway, so a notification lost
while this connection was down delays delivery by one poll at most.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from threadstore.events.publisher import wait_for_signal
from threadstore.events.repository import CHANNEL

log = logging.getLogger("threadstore.events")

HEARTBEAT_SECONDS = 10.0  # a connection that died silently is noticed within this
MAX_BACKOFF_SECONDS = 5.0
_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn")


def _set(signal: asyncio.Event, *_: Any) -> None:
    signal.set()


def connect_arguments(engine: AsyncEngine, url: str, application_name: str, timeout: float) -> dict[str, Any]:
    """asyncpg.connect() arguments for `url` (THREADSTORE_DIRECT_DATABASE_URL, or the engine's), read as the
    engine's dialect reads a URL."""
    _, params = engine.dialect.create_connect_args(make_url(url))
    params = {k: v for k, v in params.items() if k not in _SQLALCHEMY_ONLY}
    params["server_settings"] = {"application_name": application_name}
    params["timeout"] = timeout
    return params


async def listen_forever(connect_args: dict[str, Any], on_published: Callable[[int], None]) -> None:
    def notified(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            position = int(payload)
        except ValueError:
            log.warning("ignoring a malformed event notification")
            return
        on_published(position)

    failures = 0
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(**connect_args)
            lost = asyncio.Event()
            conn.add_termination_listener(partial(_set, lost))
            await conn.add_listener(CHANNEL, notified)
            if failures:
                log.info("listening for events again")
            failures = 0
            while not lost.is_set():
                if not await wait_for_signal(lost, HEARTBEAT_SECONDS):
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        await conn.execute("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            failures += 1
            if failures == 1:
                log.warning("event listener connection lost (%s); reconnecting", type(error).__name__)
        finally:
            if conn is not None:
                conn.terminate()
        # Full jitter, capped: instances that lost the server together do not reconnect in lockstep.
        await asyncio.sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.1 * 2**failures)))
