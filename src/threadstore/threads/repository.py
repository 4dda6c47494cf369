"""All SQL about threads. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from threadstore.db.tables import UtcDateTime, threads
from threadstore.db.unit_of_work import Tx

Row = Any  # a SQLAlchemy RowMapping: read-only, keyed by column name

COLUMNS = [c for c in threads.c if c.name != "user_id"]


def _owned(user_id: str, thread_id: str) -> ColumnElement[bool]:
    return and_(threads.c.id == thread_id, threads.c.user_id == user_id)


def later_of(now: datetime) -> ColumnElement[Any]:
    # updated_at never moves backwards, even if a unit of work that started earlier commits later.
    stamp = literal(now, UtcDateTime())
    return case((threads.c.updated_at > stamp, threads.c.updated_at), else_=stamp)


async def insert_thread(tx: Tx, values: dict[str, Any]) -> None:
    await tx.conn.execute(insert(threads).values(**values))


async def get_owned(tx: Tx, user_id: str, thread_id: str, *, for_update: bool = False) -> Row | None:
    stmt = select(*COLUMNS).where(_owned(user_id, thread_id))
    if for_update:
        stmt = stmt.with_for_update()
    return (await tx.conn.execute(stmt)).mappings().first()


async def list_page(
    tx: Tx,
    user_id: str,
    *,
    status: str,
    limit: int,
    after: tuple[datetime, str] | None,
    title_contains: str | None,
    metadata_equals: Sequence[tuple[str, str]],
) -> list[Row]:
    stmt: Select[Any] = select(*COLUMNS).where(threads.c.user_id == user_id)
    if status != "all":
        stmt = stmt.where(threads.c.status == status)
    if after is not None:
        # Row-value comparison: the (user_id[, status], updated_at, id) index serves it as one range scan.
        stmt = stmt.where(
            tuple_(threads.c.updated_at, threads.c.id) < tuple_(literal(after[0], UtcDateTime()), after[1])
        )
    if title_contains:
        stmt = stmt.where(_title_contains(tx.dialect, title_contains))
    for key, value in metadata_equals:
        stmt = stmt.where(_metadata_equals(tx.dialect, key, value))
    stmt = stmt.order_by(threads.c.updated_at.desc(), threads.c.id.desc()).limit(limit)
    return list((await tx.conn.execute(stmt)).mappings().all())


def _title_contains(dialect: str, needle: str) -> ColumnElement[bool]:
    # strpos/instr take the needle literally: '%' and '_' are not wildcards, no escaping to get wrong.
    if dialect == "sqlite":
        return func.instr(func.ts_casefold(threads.c.title), needle.casefold()) > 0
    return func.strpos(func.lower(threads.c.title), func.lower(needle)) > 0


def _metadata_equals(dialect: str, key: str, value: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        each = func.json_each(threads.c.metadata).table_valued("key", "type", "value")
        return exists(
            select(literal(1)).select_from(each).where(each.c.key == key, each.c.type == "text", each.c.value == value)
        )
    # Containment matches string values exactly (a number 5 never equals "5").
    return threads.c.metadata.op("@>")(literal({key: value}, JSONB()))


async def bump_for_append(tx: Tx, user_id: str, thread_id: str) -> int | None:
    """Counts one more message atomically; returns its seq, or None if no active owned thread."""
    stmt = (
        update(threads)
        .where(_owned(user_id, thread_id), threads.c.status == "active")
        .values(
            message_count=threads.c.message_count + 1,
            version=threads.c.version + 1,
            updated_at=later_of(tx.now),
            last_message_at=tx.now,
        )
        .returning(threads.c.message_count)
    )
    seq: int | None = (await tx.conn.execute(stmt)).scalar_one_or_none()
    return seq


async def update_owned(
    tx: Tx, user_id: str, thread_id: str, values: dict[str, Any], *, expected_version: int | None = None
) -> Row | None:
    """Applies `values` as one change (version + 1); with `expected_version`, only if it has not moved."""
    condition = _owned(user_id, thread_id)
    if expected_version is not None:
        condition = and_(condition, threads.c.version == expected_version)
    stmt = (
        update(threads)
        .where(condition)
        .values(**values, version=threads.c.version + 1, updated_at=later_of(tx.now))
        .returning(*COLUMNS)
    )
    return (await tx.conn.execute(stmt)).mappings().first()


async def archive_if_active(tx: Tx, user_id: str, thread_id: str) -> Row | None:
    stmt = (
        update(threads)
        .where(_owned(user_id, thread_id), threads.c.status == "active")
        .values(status="archived", archived_at=tx.now, version=threads.c.version + 1, updated_at=later_of(tx.now))
        .returning(*COLUMNS)
    )
    return (await tx.conn.execute(stmt)).mappings().first()


async def delete_owned(tx: Tx, user_id: str, thread_id: str) -> bool:
    result = await tx.conn.execute(delete(threads).where(_owned(user_id, thread_id)).returning(threads.c.id))
    return result.first() is not None


async def status_of(tx: Tx, user_id: str, thread_id: str) -> str | None:
    stmt = select(threads.c.status).where(_owned(user_id, thread_id))
    return (await tx.conn.execute(stmt)).scalar_one_or_none()
