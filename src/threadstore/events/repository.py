"""All SQL of event delivery: publishing positions, reading published events, pruning old ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text

from threadstore.db.tables import events
from threadstore.db.unit_of_work import Tx

# Any constant shared by every instance: publishers of all processes take turns on it.
PUBLISH_LOCK_ID = 0x7468726576656E74  # "threvent"
CHANNEL = "threadstore_events"


@dataclass(frozen=True)
class PublishedEvent:
    position: int
    user_id: str
    type: str
    data: str  # the JSON text as recorded: one line


# Positions continue from the largest ever published and follow insert order within the batch. Only rows
# this statement can see get one, i.e. rows already committed: an event whose transaction is still open
# is left for a later run, which will give it a larger position.
_PUBLISH = text(
    """
    UPDATE events SET position = numbered.base + numbered.rn
    FROM (
        SELECT id,
               (SELECT coalesce(max(position), 0) FROM events) AS base,
               row_number() OVER (ORDER BY id) AS rn
        FROM events WHERE position IS NULL ORDER BY id LIMIT :batch
    ) AS numbered
    WHERE events.id = numbered.id
    RETURNING events.position
    """
)
_READ_COMMITTED = text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


async def publish(tx: Tx, batch: int) -> tuple[int, int | None]:
    """Gives the next positions to up to `batch` committed events. Returns (how many, largest position).

    Publishers must take turns, and each must see every commit of the one before it. SQLite's write
    transaction already holds the database-wide write lock. On PostgreSQL a transaction-scoped advisory
    lock does it: the UPDATE is a statement of its own, after the lock, so under READ COMMITTED its
    snapshot includes the previous publisher's commit. The NOTIFY goes out at COMMIT, with the positions.
    """
    if tx.dialect == "postgresql":
        # Whatever the configured isolation level: a snapshot taken before the lock was granted would miss
        # the previous publisher's positions.
        await tx.conn.execute(_READ_COMMITTED)
        await tx.conn.execute(_LOCK, {"key": PUBLISH_LOCK_ID})
    positions = (await tx.conn.execute(_PUBLISH, {"batch": batch})).scalars().all()
    if not positions:
        return 0, None
    top = max(positions)
    if tx.dialect == "postgresql":
        await tx.conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": str(top)})
    return len(positions), top


async def has_unpublished(tx: Tx) -> bool:
    found = await tx.conn.execute(select(events.c.id).where(events.c.position.is_(None)).limit(1))
    return found.first() is not None


async def max_position(tx: Tx) -> int:
    return int((await tx.conn.execute(select(func.coalesce(func.max(events.c.position), 0)))).scalar_one())


async def min_position(tx: Tx) -> int | None:
    value = (await tx.conn.execute(select(func.min(events.c.position)))).scalar_one()
    return None if value is None else int(value)


_COLUMNS = (events.c.position, events.c.user_id, events.c.type, events.c.data)


async def published_after(tx: Tx, position: int, limit: int) -> list[PublishedEvent]:
    """Everyone's published events after `position`, in order (what the hub fans out)."""
    query = select(*_COLUMNS).where(events.c.position > position).order_by(events.c.position).limit(limit)
    return [PublishedEvent(*row) for row in (await tx.conn.execute(query)).all()]


async def published_for_user_after(tx: Tx, user_id: str, position: int, limit: int) -> list[PublishedEvent]:
    """One user's published events after `position`, in order (a resuming stream's catch-up)."""
    query = (
        select(*_COLUMNS)
        .where(events.c.user_id == user_id, events.c.position > position)
        .order_by(events.c.position)
        .limit(limit)
    )
    return [PublishedEvent(*row) for row in (await tx.conn.execute(query)).all()]


async def delete_expired_prefix(tx: Tx, cutoff: datetime, batch: int) -> int:
    """Deletes the oldest published events, in position order, while they are older than `cutoff`.

    Only a prefix of positions is ever deleted, so the retained events are always a gapless range and a
    resume point below it is known to have lost events. Unpublished rows have no position and are never
    touched; the newest published event is kept so positions continue from it even when all are old.
    """
    oldest = (
        await tx.conn.execute(
            select(events.c.position, events.c.created_at)
            .where(events.c.position.is_not(None))
            .order_by(events.c.position)
            .limit(batch + 1)
        )
    ).all()
    expired = 0
    # Never the last row read: it is either beyond this batch or the newest published event.
    for position, created_at in oldest[:-1]:
        if created_at >= cutoff:
            break
        expired = position
    if not expired:
        return 0
    result = await tx.conn.execute(delete(events).where(events.c.position.is_not(None), events.c.position <= expired))
    return int(result.rowcount)
