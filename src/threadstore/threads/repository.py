"""All SQL about threads. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping

from threadstore.db.failures import Stale
from threadstore.db.outbox import Event, WithEvent
from threadstore.db.tables import HAS_STATUS, THREAD_STATUSES, UtcDateTime, messages, storable, threads
from threadstore.db.unit_of_work import Tx

COLUMNS = [c for c in threads.c if c.name != "user_id"]

# Statements are built once with bind parameters: building a SQLAlchemy expression per request costs more
# than the compiled-statement cache saves (docs/performance.md).
_OWNED = (threads.c.id == bindparam("p_id"), threads.c.user_id == bindparam("p_user"))
_SELECT = select(*COLUMNS).where(*_OWNED)
_SELECT_FOR_UPDATE = _SELECT.with_for_update()


async def get(tx: Tx, user_id: str, thread_id: str) -> RowMapping | None:
    if not storable(user_id, thread_id):
        return None
    return (await tx.conn.execute(_SELECT, {"p_id": thread_id, "p_user": user_id})).mappings().first()


async def get_for_change(tx: Tx, user_id: str, thread_id: str) -> RowMapping | None:
    """The thread a change will be decided on. In a transaction its row stays locked until the end, so
    concurrent changes queue; without one, the change is a compare-and-set (`update_at_version`)."""
    if not storable(user_id, thread_id):
        return None
    stmt = _SELECT_FOR_UPDATE if tx.in_transaction else _SELECT
    return (await tx.conn.execute(stmt, {"p_id": thread_id, "p_user": user_id})).mappings().first()


# A new thread, and on PostgreSQL its initial messages in the same statement: unnest() turns one array per
# column into rows, so any number of messages is one statement shape.
_INSERT = insert(threads).values({c.name: bindparam(f"t_{c.name}", type_=c.type) for c in threads.c})
_INSERT_MESSAGES = insert(messages)
_MESSAGE_ARRAYS = (
    func.unnest(*(bindparam(f"m_{name}", type_=ARRAY(Text)) for name in ("id", "seq", "role", "content", "metadata")))
    .table_valued("id", "seq", "role", "content", "metadata")
    .render_derived(name="u")
)
_CREATE_MESSAGES = (
    insert(messages)
    .from_select(
        ["id", "thread_id", "seq", "role", "content", "metadata", "created_at"],
        select(
            _MESSAGE_ARRAYS.c.id,
            bindparam("t_id"),
            _MESSAGE_ARRAYS.c.seq.cast(Integer),
            _MESSAGE_ARRAYS.c.role,
            _MESSAGE_ARRAYS.c.content,
            _MESSAGE_ARRAYS.c.metadata.cast(JSONB),
            bindparam("t_created_at", type_=UtcDateTime()),
        ),
    )
    .cte("m")
)
# On PostgreSQL the thread, its first messages and its event are one statement; without messages the shorter
# form saves binding and planning five empty arrays.
_CREATE = WithEvent(_INSERT.returning(threads.c.id))
_CREATE_WITH_MESSAGES = WithEvent(_INSERT.returning(threads.c.id), also=(_CREATE_MESSAGES,))


async def insert_thread(tx: Tx, values: dict[str, Any], message_rows: Sequence[dict[str, Any]], event: Event) -> None:
    """Inserts the thread `values` with its initial `message_rows` and records `event`."""
    params = {f"t_{name}": value for name, value in values.items()}
    if not message_rows:
        await _CREATE.execute(tx, params, event)
    elif tx.dialect == "postgresql":
        for name in ("id", "seq", "role", "content"):
            params[f"m_{name}"] = [str(row[name]) for row in message_rows]
        params["m_metadata"] = [orjson.dumps(row["metadata"]).decode() for row in message_rows]
        await _CREATE_WITH_MESSAGES.execute(tx, params, event)
    else:  # SQLite cannot put writes in a CTE; its transaction makes them one change
        await _CREATE.execute(tx, params, event)
        await tx.conn.execute(_INSERT_MESSAGES, list(message_rows))


async def list_page(
    tx: Tx,
    user_id: str,
    *,
    status: str,
    limit: int,
    after: tuple[datetime, str] | None,
    title_contains: str | None,
    metadata_equals: Sequence[tuple[str, str]],
) -> list[RowMapping]:
    if not storable(user_id, title_contains or "", *(part for pair in metadata_equals for part in pair)):
        return []
    stmt = _list_statement(tx.dialect, status, after is not None, bool(title_contains), len(metadata_equals))
    params: dict[str, Any] = {"p_user": user_id, "p_limit": limit}
    if after is not None:
        params["p_after_ts"], params["p_after_id"] = after
    if title_contains:
        params["p_q"] = title_contains.casefold() if tx.dialect == "sqlite" else title_contains
    for i, (key, value) in enumerate(metadata_equals):
        if tx.dialect == "sqlite":
            params[f"p_mk{i}"], params[f"p_mv{i}"] = key, value
        else:
            params[f"p_m{i}"] = {key: value}
    return list((await tx.conn.execute(stmt, params)).mappings().all())


@lru_cache(maxsize=256)
def _list_statement(dialect: str, status: str, after: bool, title: bool, metadata_filters: int) -> Select[Any]:
    """A page of `status` ("active", "archived" or "all") threads, newest first, of at most `p_limit` rows.

    Each status has its own partial index (db/tables.py); "all" takes the first `p_limit` rows of each, in
    index order, and merges them: on PostgreSQL a Merge Append of the two index scans, never a sort."""
    if status != "all":
        return _status_page(dialect, status, after, title, metadata_filters)
    each = [_status_page(dialect, s, after, title, metadata_filters).subquery(f"{s}_page") for s in THREAD_STATUSES]
    # SQLite takes a LIMIT inside a compound select only in a subquery, hence SELECT * FROM (…) per status.
    both = union_all(*(select(*page.c) for page in each)).subquery("both_statuses")
    return select(*both.c).order_by(both.c.updated_at.desc(), both.c.id.desc()).limit(bindparam("p_limit"))


def _status_page(dialect: str, status: str, after: bool, title: bool, metadata_filters: int) -> Select[Any]:
    # The status as a literal, so the planner matches the status's partial index (HAS_STATUS).
    stmt: Select[Any] = select(*COLUMNS).where(threads.c.user_id == bindparam("p_user"), HAS_STATUS[status])
    if after:
        # Row-value comparison: the (user_id, updated_at, id) index serves it as one range scan.
        stmt = stmt.where(
            tuple_(threads.c.updated_at, threads.c.id)
            < tuple_(bindparam("p_after_ts", type_=UtcDateTime()), bindparam("p_after_id"))
        )
    filters = [_title_contains(dialect)] if title else []
    filters += [_metadata_equals(dialect, i) for i in range(metadata_filters)]
    if filters:
        # One opaque condition, which PostgreSQL's planner estimates to keep half the rows. As separate terms
        # it has no statistics for them and guesses that almost nothing matches (0.1% per containment), so it
        # reads all of the user's threads of the status past the cursor and sorts them, on every page: the
        # whole list per page when the filters match many. The index walk in list order stops at a full page.
        stmt = stmt.where(func.coalesce(and_(*filters), false()))
    return stmt.order_by(threads.c.updated_at.desc(), threads.c.id.desc()).limit(bindparam("p_limit"))


def _title_contains(dialect: str) -> ColumnElement[bool]:
    # strpos/instr take the needle literally: '%' and '_' are not wildcards, no escaping to get wrong.
    needle: BindParameter[str] = bindparam("p_q")
    if dialect == "sqlite":
        return func.instr(func.ts_casefold(threads.c.title), needle) > 0
    return func.strpos(func.lower(threads.c.title), func.lower(needle)) > 0


def _metadata_equals(dialect: str, i: int) -> ColumnElement[bool]:
    if dialect == "sqlite":
        each = func.json_each(threads.c.metadata).table_valued("key", "type", "value")
        return exists(
            select(literal(1))
            .select_from(each)
            .where(each.c.key == bindparam(f"p_mk{i}"), each.c.type == "text", each.c.value == bindparam(f"p_mv{i}"))
        )
    # Containment matches string values exactly (a number 5 never equals "5").
    return threads.c.metadata.op("@>")(bindparam(f"p_m{i}", type_=JSONB()))


@lru_cache(maxsize=64)
def _update(columns: tuple[str, ...]) -> WithEvent:
    # Built once per set of changed columns: building an UPDATE and its cache key per request is a visible
    # share of a PATCH's CPU (docs/performance.md).
    stmt = (
        update(threads)
        .where(*_OWNED, threads.c.version == bindparam("p_version"))
        .values({name: bindparam(f"v_{name}", type_=threads.c[name].type) for name in columns})
        .values(version=threads.c.version + 1)
        .returning(threads.c.metadata)
    )
    return WithEvent(stmt, stored="metadata")


async def update_at_version(
    tx: Tx, user_id: str, thread_id: str, values: dict[str, Any], version: int, event: Event
) -> Any:
    """Applies `values` as one change (version + 1) if the thread is still at `version`, the version it was
    read at, and records `event`, whose data's metadata is taken as stored. Returns the stored metadata.

    A compare-and-set: a change since the read matches nothing and raises `Stale`, so the unit runs again."""
    params = {"p_id": thread_id, "p_user": user_id, "p_version": version}
    params |= {f"v_{name}": value for name, value in values.items()}
    row = await _update(tuple(sorted(values))).execute(tx, params, event)
    if row is None:
        raise Stale()
    return row["metadata"]


_DELETE = WithEvent(delete(threads).where(*_OWNED).returning(threads.c.id))


async def delete_owned(tx: Tx, user_id: str, thread_id: str, event: Event) -> bool:
    """Deletes the thread (its messages go with it) and records `event`; False if no such owned thread."""
    if not storable(user_id, thread_id):
        return False
    return await _DELETE.execute(tx, {"p_id": thread_id, "p_user": user_id}, event) is not None
