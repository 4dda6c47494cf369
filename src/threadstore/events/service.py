"""Rules of the events domain that other modules call: where a stream starts, which events expire, and the
erasure of a deleted thread's events."""

from __future__ import annotations

from datetime import datetime

from threadstore.db.outbox import THREAD_DELETED
from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import Conflict
from threadstore.events import repository
from threadstore.events.publisher import Publisher

PRUNE_BATCH = 1000


async def start_after(database: Database, publisher: Publisher, resume: int | None) -> int:
    """The position a stream starts after: `resume` (a Last-Event-ID), or for a new stream the newest."""
    if resume is None:
        # A new stream gets the events committed after it opened: every event committed before is placed
        # at or below the start (an id still undecided is settled as a gap, to be delivered later if ever).
        return await publisher.publish_all(force=True)
    if resume < await database.read(repository.pruned_through):
        raise Conflict(
            "Events after this Last-Event-ID are no longer kept; reload the state and open a new stream.",
            reason="expired",
        )
    return resume


async def delete_expired(tx: Tx, cutoff: datetime) -> int:
    """Deletes up to a batch of delivered events older than `cutoff` (the oldest first); returns how many."""
    return await repository.delete_expired_prefix(tx, cutoff, PRUNE_BATCH)


async def erase_thread(tx: Tx, user_id: str, thread_id: str) -> int:
    """Deletes the events kept about a thread that is deleted for good in this unit, but its deletion's own
    (API v2: nothing deleted can be read back by a resume). Runs after the thread's row is deleted, so no
    change of the thread can commit after it."""
    return await repository.erase_thread(tx, user_id, thread_id, keep_type=THREAD_DELETED)
