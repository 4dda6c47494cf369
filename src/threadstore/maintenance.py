"""Background housekeeping: expired idempotency records and events past their retention are deleted in
small batches, each batch its own unit of work, so storage stays bounded without long transactions or locks;
and unfinished replies whose generator went silent are ended, in batches the same way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import DomainError
from threadstore.events import service as events
from threadstore.idempotency import service as idempotency
from threadstore.messages import replies

log = logging.getLogger("threadstore.maintenance")

A = TypeVar("A")


async def prune_once(database: Database, ttl_seconds: int) -> int:
    """Deletes every idempotency record older than the TTL. Returns how many."""
    return await _drain(database, idempotency.delete_expired, ttl_seconds, idempotency.PRUNE_BATCH)


async def prune_events(database: Database, cutoff: datetime) -> int:
    """Deletes published events older than `cutoff`, oldest first. Returns how many."""
    return await _drain(database, events.delete_expired, cutoff, events.PRUNE_BATCH)


# API.md: a stale reply is ended within 10 seconds after it became stale.
STALE_SWEEP_SECONDS = 5.0


async def end_stale_replies(database: Database, stale_seconds: float) -> int:
    """Ends every unfinished reply idle for `stale_seconds`. Returns how many."""
    cutoff = datetime.now(UTC) - timedelta(seconds=stale_seconds)
    return await _drain(database, replies.end_stale, cutoff, replies.STALE_BATCH)


async def end_stale_forever(database: Database, stale_seconds: float) -> None:
    interval = min(STALE_SWEEP_SECONDS, stale_seconds / 2)
    while True:
        await asyncio.sleep(interval)
        await _guarded("stale replies", end_stale_replies(database, stale_seconds), verb="ended")


async def _drain(database: Database, batch: Callable[[Tx, A], Awaitable[int]], arg: A, size: int) -> int:
    total = 0
    while True:
        deleted = await database.write(batch, arg)
        total += deleted
        if deleted < size:
            return total


async def run_forever(
    database: Database, ttl_seconds: int, interval_seconds: float, event_retention_seconds: int | None = None
) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        await _guarded("expired idempotency keys", prune_once(database, ttl_seconds))
        if event_retention_seconds is not None:
            cutoff = datetime.now(UTC) - timedelta(seconds=event_retention_seconds)
            await _guarded("events past their retention", prune_events(database, cutoff))


async def _guarded(what: str, pruning: Coroutine[Any, Any, int], verb: str = "pruned") -> int:
    try:
        deleted = await pruning
    except DomainError as error:  # database busy or down: try again next interval
        log.warning("housekeeping (%s) failed: %s", what, error.detail)
        return 0
    except Exception:  # a bug must not end housekeeping for the life of the process
        log.exception("housekeeping (%s) failed", what)
        return 0
    if deleted:
        log.info("%s %d %s", verb, deleted, what)
    return deleted
