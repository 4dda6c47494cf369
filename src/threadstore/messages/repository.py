"""All SQL about messages. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import BindParameter, Select, bindparam, insert, select

from threadstore.db.tables import messages, threads
from threadstore.db.unit_of_work import Tx
from threadstore.events import outbox
from threadstore.threads import repository as threads_repo

Row = Any

COLUMNS = list(messages.c)


_INSERT = insert(messages)


async def insert_messages(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await tx.conn.execute(_INSERT, list(rows))


_INSERT_WITH_EVENT = outbox.InsertWithEvent(messages)


async def insert_message(tx: Tx, row: dict[str, Any], *, event: tuple[str, str, dict[str, Any]]) -> None:
    """Inserts the message and records its event (user id, type, data) in one statement where possible."""
    await _INSERT_WITH_EVENT.execute(tx, row, *event)


def _page_statement(order: Literal["asc", "desc"], after: bool) -> Select[Any]:
    # Joining the thread checks ownership in the same round trip; the (thread_id, seq) unique index
    # makes any page, first or last of 100,000, one index range scan.
    stmt = (
        select(*COLUMNS)
        .join(threads, threads.c.id == messages.c.thread_id)
        .where(messages.c.thread_id == bindparam("p_thread"), threads.c.user_id == bindparam("p_user"))
    )
    if after:
        bound: BindParameter[int] = bindparam("p_after")
        stmt = stmt.where(messages.c.seq > bound if order == "asc" else messages.c.seq < bound)
    ordering = messages.c.seq.asc() if order == "asc" else messages.c.seq.desc()
    return stmt.order_by(ordering).limit(bindparam("p_limit"))


# Built once: the four shapes a page query can take.
_PAGES = {(order, after): _page_statement(order, after) for order in ("asc", "desc") for after in (False, True)}


async def page(
    tx: Tx, user_id: str, thread_id: str, *, after_seq: int | None, order: Literal["asc", "desc"], limit: int
) -> list[Row]:
    if not threads_repo.storable(user_id, thread_id):
        return []
    params = {"p_thread": thread_id, "p_user": user_id, "p_after": after_seq, "p_limit": limit}
    if after_seq is None:
        del params["p_after"]
    stmt = _PAGES[(order, after_seq is not None)]
    return list((await tx.conn.execute(stmt, params)).mappings().all())


async def first_by_role(tx: Tx, thread_id: str, role: str) -> Row | None:
    stmt = (
        select(*COLUMNS)
        .where(messages.c.thread_id == thread_id, messages.c.role == role)
        .order_by(messages.c.seq.asc())
        .limit(1)
    )
    return (await tx.conn.execute(stmt)).mappings().first()
