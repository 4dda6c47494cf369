"""SQL for idempotency records: the stored first response of a keyed request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, select, tuple_, update

from threadstore.db.tables import idempotency_keys, messages
from threadstore.db.unit_of_work import Tx

Row = Any


async def try_lock(tx: Tx, user_id: str, key: str) -> bool:
    """Takes the key's transaction-scoped lock without waiting; False while another request holds it.

    On SQLite every write transaction already holds the database's single write lock (BEGIN IMMEDIATE),
    so two requests with one key can never be in flight at once there.
    """
    if tx.dialect != "postgresql":
        return True
    # Length-prefixed so ("ab", "c") and ("a", "bc") never share a lock.
    lock_id = func.hashtextextended(f"{len(user_id)}:{user_id}{key}", 0)
    return bool((await tx.conn.execute(select(func.pg_try_advisory_xact_lock(lock_id)))).scalar_one())


async def find(tx: Tx, user_id: str, key: str) -> Row | None:
    stmt = select(idempotency_keys).where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
    return (await tx.conn.execute(stmt)).mappings().first()


async def remove(tx: Tx, user_id: str, key: str) -> None:
    await tx.conn.execute(
        delete(idempotency_keys).where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
    )


async def insert_record(tx: Tx, values: dict[str, Any]) -> None:
    await tx.conn.execute(insert(idempotency_keys).values(**values))


# Found by the primary key's user_id prefix, then filtered: no index on thread_id (migration 0004 says why).
_ERASE = (
    update(idempotency_keys)
    .where(idempotency_keys.c.user_id == bindparam("p_user"), idempotency_keys.c.thread_id == bindparam("p_thread"))
    .values(status_code=bindparam("p_status"), response_body="", response_headers="{}")
)


async def erase_thread(tx: Tx, user_id: str, thread_id: str, status: int) -> None:
    """Replaces the stored response of every key of `user_id` that holds `thread_id`'s content by `status`,
    with no body or headers; the fingerprint stays, so the key still belongs to its first request."""
    await tx.conn.execute(_ERASE, {"p_user": user_id, "p_thread": thread_id, "p_status": status})


async def delete_expired(tx: Tx, cutoff: datetime, batch: int) -> int:
    """Deletes up to `batch` records created before `cutoff`; bounded so one pass never holds locks long."""
    oldest = (
        select(idempotency_keys.c.user_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < cutoff)
        .limit(batch)
    )
    keys = tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key)
    result = await tx.conn.execute(delete(idempotency_keys).where(keys.in_(oldest)))
    return int(result.rowcount)


# The same records, those whose message is gone (a deleted branch): still found by the user_id prefix.
_ERASE_DELETED_MESSAGES = _ERASE.where(
    idempotency_keys.c.message_id.is_not(None),
    ~exists().where(messages.c.id == idempotency_keys.c.message_id),
    idempotency_keys.c.status_code != bindparam("p_status"),
)


async def erase_deleted_messages(tx: Tx, user_id: str, thread_id: str, status: int) -> None:
    """Replaces by `status` the stored response of every key of `user_id` that created a message of
    `thread_id` which no longer exists."""
    await tx.conn.execute(_ERASE_DELETED_MESSAGES, {"p_user": user_id, "p_thread": thread_id, "p_status": status})


# A stored response of before version 2 (legacy.py): the message's place from its row, or a line's message by seq.
async def message_place(tx: Tx, message_id: Any) -> tuple[str | None, int, int] | None:
    if not isinstance(message_id, str):
        return None
    stmt = select(messages.c.parent_id, messages.c.depth, messages.c.sibling_index).where(messages.c.id == message_id)
    row = (await tx.conn.execute(stmt)).first()
    return None if row is None or row.depth is None else (row.parent_id, row.depth, row.sibling_index)


async def message_at(tx: Tx, thread_id: Any, seq: Any) -> str | None:
    if not isinstance(thread_id, str) or not isinstance(seq, int):
        return None
    stmt = select(messages.c.id).where(messages.c.thread_id == thread_id, messages.c.seq == seq)
    return (await tx.conn.execute(stmt)).scalar_one_or_none()
