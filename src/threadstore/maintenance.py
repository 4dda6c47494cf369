"""Background housekeeping: expired idempotency records are deleted in small batches, each batch its own
unit of work, so storage stays bounded without long transactions or locks."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import DomainError
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


async def run_forever(database: Database, ttl_seconds: int, interval_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            deleted = await prune_once(database, ttl_seconds)
        except DomainError as error:  # database busy or down: try again next interval
            log.warning("pruning expired idempotency keys failed: %s", error.detail)
            continue
        except Exception:  # a bug must not end housekeeping for the life of the process
            log.exception("pruning expired idempotency keys failed")
            continue
        if deleted:
            log.info("pruned %d expired idempotency keys", deleted)
