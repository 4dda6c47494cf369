"""All SQL about messages. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import BindParameter, Select, bindparam, case, insert, select, update
from sqlalchemy.engine import RowMapping

from threadstore.db.outbox import Event, WithEvent
from threadstore.db.tables import UtcDateTime, messages, storable, threads
from threadstore.db.unit_of_work import Tx

COLUMNS = list(messages.c)

_NOW = bindparam("p_now", type_=UtcDateTime())
# Counts one more message on the owned, active thread; the new count is the message's seq. A blind update (no
# read first), so the rule that updated_at never moves backwards is applied here, in SQL.
_BUMP = (
    update(threads)
    .where(threads.c.id == bindparam("m_thread_id"), threads.c.user_id == bindparam("p_user"))
    .where(threads.c.status == "active")
    .values(
        message_count=threads.c.message_count + 1,
        version=threads.c.version + 1,
        updated_at=case((threads.c.updated_at > _NOW, threads.c.updated_at), else_=_NOW),
        last_message_at=case((threads.c.last_message_at > _NOW, threads.c.last_message_at), else_=_NOW),
    )
    .returning(threads.c.message_count.label("seq"))
)
_MESSAGE = {c.name: bindparam(f"m_{c.name}", type_=c.type) for c in messages.c if c.name != "seq"}
_BUMPED = _BUMP.cte("b")
_APPEND = {
    # One statement: the bump hands the seq to the INSERT, which hands it to the event.
    "postgresql": WithEvent(
        insert(messages)
        .from_select([*_MESSAGE, "seq"], select(*_MESSAGE.values(), _BUMPED.c.seq))
        .returning(messages.c.seq),
        stored="seq",
    ),
    "sqlite": WithEvent(
        insert(messages).values({**_MESSAGE, "seq": bindparam("m_seq")}).returning(messages.c.seq), "seq"
    ),
}


async def append(tx: Tx, user_id: str, row: dict[str, Any], event: Event) -> int | None:
    """Counts one more message on the owned, active thread, inserts `row` with that count as its seq and
    records `event`. Returns the seq, or None if no active owned thread matched."""
    if not storable(user_id, row["thread_id"]):
        return None
    params = {f"m_{name}": value for name, value in row.items()} | {"p_user": user_id, "p_now": tx.now}
    if tx.dialect != "postgresql":
        # SQLite cannot chain writes in one statement; its transaction makes the two one change.
        params["m_seq"] = (await tx.conn.execute(_BUMP, params)).scalar_one_or_none()
        if params["m_seq"] is None:
            return None
    written = await _APPEND[tx.dialect].execute(tx, params, event)
    return None if written is None else int(written["seq"])


async def thread_status(tx: Tx, user_id: str, thread_id: str) -> str | None:
    """The status of the owned thread a message belongs to; None if there is none."""
    if not storable(user_id, thread_id):
        return None
    stmt = select(threads.c.status).where(threads.c.id == thread_id, threads.c.user_id == user_id)
    return (await tx.conn.execute(stmt)).scalar_one_or_none()


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
) -> list[RowMapping]:
    if not storable(user_id, thread_id):
        return []
    params = {"p_thread": thread_id, "p_user": user_id, "p_after": after_seq, "p_limit": limit}
    if after_seq is None:
        del params["p_after"]
    stmt = _PAGES[(order, after_seq is not None)]
    return list((await tx.conn.execute(stmt, params)).mappings().all())


async def first_by_role(tx: Tx, thread_id: str, role: str) -> RowMapping | None:
    stmt = (
        select(*COLUMNS)
        .where(messages.c.thread_id == thread_id, messages.c.role == role)
        .order_by(messages.c.seq.asc())
        .limit(1)
    )
    return (await tx.conn.execute(stmt)).mappings().first()
