"""Background housekeeping: expired idempotency records and events past their retention are deleted in
small batches, each batch its own unit of work, so storage stays bounded without long transactions or locks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import DomainError
from threadstore.events import repository as events_repo
from threadstore.idempotency import repository as idempotency_repo

log = logging.getLogger("threadstore.maintenance")

BATCH = 1000


async def prune_once(database: Database, ttl_seconds: int) -> int:
    """One full pass: deletes every record older than the TTL, batch by batch. Returns how many."""
    total = 0
    while True:

        async def prune(tx: Tx) -> int:
            return await idempotency_repo.delete_expired(tx, tx.now - timedelta(seconds=ttl_seconds), BATCH)

        deleted = await database.write(prune)
        total += deleted
        if deleted < BATCH:
            return total


async def prune_events(database: Database, cutoff: datetime) -> int:
    """Deletes published events older than `cutoff` (see events_repo.delete_expired_prefix). Returns how many."""
    total = 0
    while True:
        deleted = await database.write(lambda tx: events_repo.delete_expired_prefix(tx, cutoff, BATCH))
        total += deleted
        if deleted < BATCH:
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


async def _guarded(what: str, pruning: Coroutine[Any, Any, int]) -> int:
    try:
        deleted = await pruning
    except DomainError as error:  # database busy or down: try again next interval
        log.warning("pruning %s failed: %s", what, error.detail)
        return 0
    except Exception:  # a bug must not end housekeeping for the life of the process
        log.exception("pruning %s failed", what)
        return 0
    if deleted:
        log.info("pruned %d %s", deleted, what)
    return deleted
