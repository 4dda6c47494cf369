"""Rules of the events domain that other modules call: where a stream starts, and which events expire."""

from __future__ import annotations

from datetime import datetime

from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import Conflict
from threadstore.events import repository
from threadstore.events.publisher import Publisher

PRUNE_BATCH = 1000


async def start_after(database: Database, publisher: Publisher, resume: int | None) -> int:
    """The position a stream starts after: `resume` (a Last-Event-ID), or for a new stream the newest."""
    if resume is None:
        # A new stream gets the events committed after it opened. Events committed before it may still
        # await their position; publishing first puts them all below the start.
        await publisher.publish_all()
        return await database.read(repository.max_position)
    oldest = await database.read(repository.min_position)
    if oldest is not None and resume < oldest - 1:
        raise Conflict(
            "Events after this Last-Event-ID are no longer kept; reload the state and open a new stream.",
        )
    return resume


async def delete_expired(tx: Tx, cutoff: datetime) -> int:
    """Deletes up to a batch of published events older than `cutoff` (the oldest first); returns how many."""
    return await repository.delete_expired_prefix(tx, cutoff, PRUNE_BATCH)
