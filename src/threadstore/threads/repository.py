"""All SQL about threads. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    CTE,
    BindParameter,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.engine import RowMapping

from threadstore.db.failures import Stale
from threadstore.db.outbox import Event, WithEvent
from threadstore.db.search_terms import tsvector_literal
from threadstore.db.tables import (
    HAS_STATUS,
    MESSAGE_REPLY_COLUMNS,
    THREAD_STATUSES,
    UtcDateTime,
    branches,
    messages,
    storable,
    threads,
)
from threadstore.db.thread_filters import metadata_equals, metadata_params
from threadstore.db.unit_of_work import Tx

# The thread as the API shows it: not its owner, nor its search terms (written only).
COLUMNS = [c for c in threads.c if c.name not in ("user_id", "search_terms")]

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


# A new thread with its trunk (the branch its first messages and roots are on: db/tables.py), and on PostgreSQL
# its initial messages, in one statement: unnest() turns one array per column into rows, so any number of
# messages is one statement shape. The trunk's id is drawn from the branches' sequence by the thread's insert.
_THREAD_VALUES = {c.name: bindparam(f"t_{c.name}", type_=c.type) for c in threads.c}
_INSERT = insert(threads).values(_THREAD_VALUES)
_INSERT_PG = insert(threads).values(
    _THREAD_VALUES | {"current_branch_id": literal_column("nextval(pg_get_serial_sequence('branches', 'id'))")}
)
_INSERT_MESSAGES = insert(messages)
_ARRAYS = ("id", "seq", "role", "content", "metadata", "parent_id", *MESSAGE_REPLY_COLUMNS)
# What each array's text is cast to (the others are text already).
_ARRAY_CASTS: dict[str, Any] = {
    "input_tokens": Integer,
    "output_tokens": Integer,
    "parts": JSONB,
    "content_length": Integer,
    "active_at": DateTime(timezone=True),
    "search_terms": TSVECTOR,
}
_JSON_ARRAYS = ("metadata", "parts")
_MESSAGE_ARRAYS = (
    func.unnest(*(bindparam(f"m_{name}", type_=ARRAY(Text)) for name in _ARRAYS))
    .table_valued(*_ARRAYS)
    .render_derived(name="u")
)


def _array(name: str) -> Any:
    column = _MESSAGE_ARRAYS.c[name]
    cast = _ARRAY_CASTS.get(name)
    return column if cast is None else column.cast(cast)


def _trunk_and_messages(written: CTE, with_messages: bool) -> tuple[CTE, ...]:
    trunk = insert(branches).from_select(
        ["id", "thread_id", "parent_branch_id", "fork_depth", "sibling_index", "level"],
        select(written.c.current_branch_id, written.c.id, null(), literal(0), literal(1), literal(0)),
    )
    if not with_messages:
        return (trunk.cte("trunk"),)
    seq = _MESSAGE_ARRAYS.c.seq.cast(Integer)
    initial = insert(messages).from_select(
        [
            *("id", "thread_id", "seq", "role", "content", "metadata", "created_at"),
            *("branch_id", "depth", "parent_id", "sibling_index", *MESSAGE_REPLY_COLUMNS),
        ],
        select(
            _MESSAGE_ARRAYS.c.id,
            written.c.id,
            seq,
            _MESSAGE_ARRAYS.c.role,
            _MESSAGE_ARRAYS.c.content,
            _MESSAGE_ARRAYS.c.metadata.cast(JSONB),
            bindparam("t_created_at", type_=UtcDateTime()),
            written.c.current_branch_id,
            seq,
            _MESSAGE_ARRAYS.c.parent_id,
            literal(1),
            *(_array(name) for name in MESSAGE_REPLY_COLUMNS),
        ).select_from(written.join(_MESSAGE_ARRAYS, true())),  # the one new thread, with each of its messages
    )
    return trunk.cte("trunk"), initial.cte("m")


_RETURNED = (threads.c.id, threads.c.current_branch_id)
# Without messages the shorter form saves binding and planning six empty arrays.
_CREATE_PG = WithEvent(_INSERT_PG.returning(*_RETURNED), also=lambda w: _trunk_and_messages(w, False))
_CREATE_WITH_MESSAGES_PG = WithEvent(_INSERT_PG.returning(*_RETURNED), also=lambda w: _trunk_and_messages(w, True))
_CREATE_SQLITE = WithEvent(_INSERT.returning(threads.c.id))
_TRUNK_SQLITE = (
    insert(branches)
    .values(thread_id=bindparam("t_id"), parent_branch_id=None, fork_depth=0, sibling_index=1, level=0)
    .returning(branches.c.id)
)


# A fork's new thread: inserted first, without its event, which follows once its copied path is known.
_WRITTEN_PG = _INSERT_PG.returning(*_RETURNED).cte("w")
_CREATE_UNANNOUNCED_PG = select(_WRITTEN_PG.c.current_branch_id).add_cte(*_trunk_and_messages(_WRITTEN_PG, False))


async def insert_fork(tx: Tx, values: dict[str, Any]) -> int:
    """Inserts a fork's thread `values` with its trunk, in a transaction whose `finish_fork` records its event.
    Returns the trunk's id."""
    params = {f"t_{name}": value for name, value in values.items()}
    if tx.dialect == "postgresql":
        return int((await tx.conn.execute(_CREATE_UNANNOUNCED_PG, params)).scalar_one())
    trunk = int((await tx.conn.execute(_TRUNK_SQLITE, params)).scalar_one())
    await tx.conn.execute(_INSERT, params | {"t_current_branch_id": trunk})
    return trunk


_FINISH_FORK = WithEvent(
    update(threads)
    .where(threads.c.id == bindparam("p_id"))
    .values(
        message_count=bindparam("v_message_count"),
        current_depth=bindparam("v_message_count"),
        current_message_id=bindparam("v_current_message_id"),
        last_message_at=bindparam("v_last_message_at", type_=UtcDateTime()),
    )
    .returning(threads.c.id)
)


async def finish_fork(tx: Tx, thread_id: str, values: dict[str, Any], event: Event) -> None:
    """Sets what the fork's copy decided (message_count, current_message_id, last_message_at) and records its
    `thread.created` event."""
    params = {"p_id": thread_id} | {f"v_{name}": values[name] for name in ("message_count", "current_message_id")}
    params["v_last_message_at"] = values["last_message_at"]
    await _FINISH_FORK.execute(tx, params, event)


async def insert_thread(tx: Tx, values: dict[str, Any], message_rows: Sequence[dict[str, Any]], event: Event) -> None:
    """Inserts the thread `values` with its trunk and its initial `message_rows` (a chain on the trunk), and
    records `event`."""
    params = {f"t_{name}": value for name, value in values.items()}
    if tx.dialect == "postgresql":
        if not message_rows:
            await _CREATE_PG.execute(tx, params, event)
            return
        params |= {f"m_{name}": [_as_text(row[name], name) for row in message_rows] for name in _ARRAYS}
        await _CREATE_WITH_MESSAGES_PG.execute(tx, params, event)
        return
    # SQLite cannot put writes in a CTE; its transaction makes them one change. The trunk goes first (its
    # foreign key to the thread is deferred to the commit).
    trunk = (await tx.conn.execute(_TRUNK_SQLITE, params)).scalar_one()
    await _CREATE_SQLITE.execute(tx, params | {"t_current_branch_id": trunk}, event)
    if message_rows:
        await tx.conn.execute(_INSERT_MESSAGES, [_stored(row) | {"branch_id": trunk} for row in message_rows])


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
    params |= metadata_params(tx.dialect, metadata_equals)
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
    filters += [metadata_equals(dialect, i) for i in range(metadata_filters)]
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


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    """A new message's row as its columns take it."""
    return {name: value for name, value in row.items() if name in messages.c}


def _as_text(value: Any, name: str) -> str | None:
    """A value of the initial messages' text arrays, which the statement casts to the column's type."""
    if value is None:
        return None
    if name in _JSON_ARRAYS:
        return orjson.dumps(value).decode()
    if name == "search_terms":
        return tsvector_literal(value)
    return value.isoformat() if isinstance(value, datetime) else str(value)
