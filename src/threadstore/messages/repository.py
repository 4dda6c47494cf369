"""All SQL about messages. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import insert, select

from threadstore.db.tables import messages, threads
from threadstore.db.unit_of_work import Tx

Row = Any

COLUMNS = list(messages.c)


async def insert_messages(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await tx.conn.execute(insert(messages), list(rows))


async def insert_message(tx: Tx, row: dict[str, Any]) -> None:
    await tx.conn.execute(insert(messages).values(**row))


async def page(
    tx: Tx, user_id: str, thread_id: str, *, after_seq: int | None, order: Literal["asc", "desc"], limit: int
) -> list[Row]:
    # Joining the thread checks ownership in the same round trip; the (thread_id, seq) unique index
    # makes any page, first or last of 100,000, one index range scan.
    stmt = (
        select(*COLUMNS)
        .join(threads, threads.c.id == messages.c.thread_id)
        .where(messages.c.thread_id == thread_id, threads.c.user_id == user_id)
    )
    if order == "asc":
        if after_seq is not None:
            stmt = stmt.where(messages.c.seq > after_seq)
        stmt = stmt.order_by(messages.c.seq.asc())
    else:
        if after_seq is not None:
            stmt = stmt.where(messages.c.seq < after_seq)
        stmt = stmt.order_by(messages.c.seq.desc())
    return list((await tx.conn.execute(stmt.limit(limit))).mappings().all())


async def first_by_role(tx: Tx, thread_id: str, role: str) -> Row | None:
    stmt = (
        select(*COLUMNS)
        .where(messages.c.thread_id == thread_id, messages.c.role == role)
        .order_by(messages.c.seq.asc())
        .limit(1)
    )
    return (await tx.conn.execute(stmt)).mappings().first()
