"""All SQL about messages. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import BindParameter, Select, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB

from threadstore.db.tables import UtcDateTime, messages, threads
from threadstore.db.unit_of_work import Tx
from threadstore.events import outbox
from threadstore.events.publisher import wake_after_commit
from threadstore.messages.schemas import message_json
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


async def append_in_place(tx: Tx, user_id: str, row: dict[str, Any], *, event_type: str) -> int | None:
    """PostgreSQL: counts one more message on the owned, active thread (the seq), inserts `row` with that seq
    and records its event, in one statement; returns the seq, or None if no active owned thread matched.

    The thread's row lock taken by the UPDATE orders concurrent appends, as in `bump_for_append`; the
    event's data is `message_json(row)` with the seq the statement hands out spliced in."""
    if not threads_repo.storable(user_id, row["thread_id"]):
        return None
    head, tail = outbox.splice(message_json(row), "seq")
    params = {f"m_{k}": v for k, v in row.items() if k != "seq"}
    params |= {"p_user": user_id, "p_now": tx.now, "e_head": head, "e_tail": tail}
    params |= outbox.event_params(tx, user_id, event_type)
    seq: int | None = (await tx.conn.execute(_APPEND, params)).scalar_one_or_none()
    if seq is not None:
        wake_after_commit(tx)
    return seq


_APPEND = (
    text(
        "WITH b AS (UPDATE threads SET message_count = threads.message_count + 1, version = threads.version + 1,"
        " updated_at = CASE WHEN threads.updated_at > :p_now THEN threads.updated_at ELSE :p_now END,"
        " last_message_at = CASE WHEN threads.last_message_at > :p_now THEN threads.last_message_at ELSE :p_now END"
        " WHERE threads.id = :m_thread_id AND threads.user_id = :p_user AND threads.status = 'active'"
        " RETURNING threads.message_count AS seq),"
        " m AS (INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at)"
        " SELECT :m_id, :m_thread_id, b.seq, :m_role, :m_content, :m_metadata, :m_created_at FROM b),"
        f" e AS ({outbox.insert_from_sql('b', 'CAST(:e_head AS text) || b.seq::text || :e_tail')})"
        " SELECT seq FROM b"
    )
    .bindparams(
        bindparam("p_now", type_=UtcDateTime()),
        bindparam("m_created_at", type_=UtcDateTime()),
        bindparam("e_created_at", type_=UtcDateTime()),
        bindparam("m_metadata", type_=JSONB()),
    )
    .columns(messages.c.seq)
)


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
