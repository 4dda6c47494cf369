"""All SQL about messages. Functions take the unit of work's `Tx`; none of them commits.

A thread's messages form a tree stored as branch segments (db/tables.py); the statements that walk it are in
tree_sql.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    Integer,
    Text,
    TextClause,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import RowMapping

from threadstore.db.failures import Stale
from threadstore.db.outbox import Event, TextWithEvent, WithEvent, record
from threadstore.db.search_terms import SearchTerms
from threadstore.db.tables import (
    MESSAGE_GIVEN,
    JsonDocument,
    OptionalJson,
    UtcDateTime,
    message_deltas,
    messages,
    storable,
    threads,
)
from threadstore.db.unit_of_work import Tx
from threadstore.messages import tree_sql

Order = Literal["asc", "desc"]
MAX_DELTA_CHARS = 65_536  # API.md: a delta's text is 1 to 65,536 characters

_NOW = bindparam("p_now", type_=UtcDateTime())
_OWNED_ACTIVE = (
    threads.c.id == bindparam("m_thread_id"),
    threads.c.user_id == bindparam("p_user"),
    threads.c.status == "active",
)
# One more message on the thread, which becomes its current one; the new count is the message's seq. Blind
# (no read first), so the rule that updated_at never moves backwards is applied here, in SQL.
_BUMP = {
    "message_count": threads.c.message_count + 1,
    "version": threads.c.version + 1,
    "updated_at": case((threads.c.updated_at > _NOW, threads.c.updated_at), else_=_NOW),
    "last_message_at": case((threads.c.last_message_at > _NOW, threads.c.last_message_at), else_=_NOW),
    "current_message_id": bindparam("m_id"),
}
_GIVEN = MESSAGE_GIVEN
_MESSAGE = {name: bindparam(f"m_{name}", type_=messages.c[name].type) for name in _GIVEN}
# What only the database decides for an append after the current message, which the event takes from it.
_PLACED = ("seq", "parent_id", "depth")

# PostgreSQL, one statement: `cur` locks the thread's row and, after waiting for a concurrent writer, returns its
# latest version (READ COMMITTED re-reads a row it locks), so the parent is the current leaf as of this commit.
# The leaf's branch and depth come from the thread row: the leaf's own row may have committed after this
# statement's snapshot and be invisible to it. A leaf has no child, so the new message is its only one.
_CURRENT = select(threads.c.id, threads.c.current_message_id).where(*_OWNED_ACTIVE).with_for_update().cte("cur")
_AFTER_CURRENT = (
    update(threads)
    .where(threads.c.id == _CURRENT.c.id)
    .values(**_BUMP, current_depth=threads.c.current_depth + 1)
    .returning(
        threads.c.message_count.label("seq"),
        threads.c.current_branch_id.label("branch_id"),
        threads.c.current_depth.label("depth"),
        _CURRENT.c.current_message_id.label("parent_id"),
    )
    .cte("t")
)
_APPEND_PG = WithEvent(
    insert(messages)
    .from_select(
        [*_MESSAGE, "seq", "branch_id", "depth", "parent_id", "sibling_index"],
        select(
            *_MESSAGE.values(),
            _AFTER_CURRENT.c.seq,
            _AFTER_CURRENT.c.branch_id,
            _AFTER_CURRENT.c.depth,
            _AFTER_CURRENT.c.parent_id,
            literal(1),
        ),
    )
    .returning(messages.c.seq, messages.c.parent_id, messages.c.depth),
    stored=_PLACED,
)
# SQLite: statements in the unit's transaction, which holds the database's write lock from BEGIN.
_CURRENT_SQLITE = select(threads.c.current_message_id).where(*_OWNED_ACTIVE)
_AFTER_CURRENT_SQLITE = (
    update(threads)
    .where(*_OWNED_ACTIVE)
    .values(**_BUMP, current_depth=threads.c.current_depth + 1)
    .returning(threads.c.message_count, threads.c.current_branch_id, threads.c.current_depth)
)
_INSERT = insert(messages)


async def append_after_current(tx: Tx, user_id: str, row: dict[str, Any], event: Event) -> dict[str, Any] | None:
    """Appends `row` after the thread's current message, makes it current, and records `event`. Returns the
    message's place (seq, parent_id, depth, sibling_index, sibling_count), or None if no active owned thread
    matched."""
    if not storable(user_id, row["thread_id"]):
        return None
    params = {f"m_{name}": row[name] for name in _GIVEN} | {"p_user": user_id, "p_now": tx.now}
    if tx.dialect == "postgresql":
        written = await _APPEND_PG.execute(tx, params, event)
        if written is None:
            return None
        placed = dict(written)
    else:
        parent_id = (await tx.conn.execute(_CURRENT_SQLITE, params)).first()
        if parent_id is None:
            return None
        seq, branch_id, depth = (await tx.conn.execute(_AFTER_CURRENT_SQLITE, params)).one()
        placed = {"seq": seq, "parent_id": parent_id[0], "depth": depth}
        values = {name: row[name] for name in _GIVEN}
        await tx.conn.execute(_INSERT, [values | placed | {"branch_id": branch_id, "sibling_index": 1}])
        await record(tx, event, placed, _PLACED)  # type: ignore[arg-type]
    return placed | {"sibling_index": 1, "sibling_count": 1}


_LOCK = select(threads.c.version).where(*_OWNED_ACTIVE).with_for_update()
_ACTIVE = select(threads.c.version).where(*_OWNED_ACTIVE)
_CHILD_PG = {
    kind: TextWithEvent(
        sql,
        ("seq", "depth", "sibling_index", "sibling_count"),
        binds=(
            bindparam("now", type_=UtcDateTime()),
            bindparam("metadata", type_=JsonDocument),
            bindparam("parts", type_=OptionalJson),
            bindparam("active_at", type_=UtcDateTime()),
            bindparam("search_terms", type_=SearchTerms()),
        ),
    )
    for kind, sql in tree_sql.CHILD_PG.items()
}
_CHILD_PLACE = {kind: text(sql) for kind, sql in tree_sql.CHILD_PLACE.items()}
_NEW_BRANCH = text(
    "INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level, jump_id, jump_level,"
    " jump_fork_depth) VALUES (:thread, :pb, :f, :sibling_index, :level, :jump_id, :jump_level, :jump_fork_depth)"
    " RETURNING id"
)
_AT_PLACE_SQLITE = (
    update(threads)
    .where(*_OWNED_ACTIVE)
    .values(**_BUMP, current_branch_id=bindparam("m_branch_id"), current_depth=bindparam("m_depth"))
    .returning(threads.c.message_count)
)


async def append_child(
    tx: Tx, user_id: str, row: dict[str, Any], parent_id: str | None, event: Event
) -> dict[str, Any] | None:
    """Appends `row` as a child of message `parent_id` of the thread (None: a new root), makes it current and
    records `event`. Returns its place, or None if the thread is not an active owned one or has no such message
    (the caller tells which). Raises Stale when, without a transaction, the thread changed under it."""
    if not storable(user_id, row["thread_id"], parent_id or ""):
        return None
    kind = "root" if parent_id is None else "message"
    if tx.dialect == "postgresql":
        params = {name: row[name] for name in _GIVEN if name not in ("thread_id", "created_at")}
        params |= {"thread": row["thread_id"], "user": user_id, "parent": parent_id, "now": tx.now}
        if tx.in_transaction:
            # Under the lock the statement's snapshot follows every write committed before: it cannot lose.
            locked = await tx.conn.execute(_LOCK, {"m_thread_id": row["thread_id"], "p_user": user_id})
            if locked.first() is None:
                return None
        written = await _CHILD_PG[kind].execute(tx, params, event)
        if written is None:
            if not tx.in_transaction and await _is_child_place(tx, row["thread_id"], user_id, parent_id):
                raise Stale()  # a write committed between the statement's snapshot and its update
            return None
        return dict(written)
    return await _append_child_sqlite(tx, user_id, row, parent_id, kind, event)


async def _is_child_place(tx: Tx, thread_id: str, user_id: str, parent_id: str | None) -> bool:
    """Whether the thread is active and owned and the parent is its message: then a statement that wrote nothing
    lost a race."""
    active = await tx.conn.execute(_ACTIVE, {"m_thread_id": thread_id, "p_user": user_id})
    if active.first() is None:
        return False
    kind = "root" if parent_id is None else "message"
    return (await tx.conn.execute(_CHILD_PLACE[kind], {"thread": thread_id, "parent": parent_id})).first() is not None


async def _append_child_sqlite(
    tx: Tx, user_id: str, row: dict[str, Any], parent_id: str | None, kind: str, event: Event
) -> dict[str, Any] | None:
    place = (await tx.conn.execute(_CHILD_PLACE[kind], {"thread": row["thread_id"], "parent": parent_id})).first()
    if place is None:
        return None
    pb, f, cont_idx, fork_idx, forks, level, fork_depth, jump_level, jj_id, jj_level, jj_fork_depth = place
    sibling_index = max(cont_idx or 0, fork_idx or 0) + 1
    branch_id = pb
    if cont_idx is not None:  # the parent already continues its branch: the child starts a new one
        # The skew-binary jump (Myers 1983): to the parent's jump's jump when the two spans are equal.
        skip = jj_id is not None and level - jump_level == jump_level - jj_level
        jump = (jj_id, jj_level, jj_fork_depth) if skip else (pb, level, fork_depth)
        branch_id = (
            await tx.conn.execute(
                _NEW_BRANCH,
                {
                    "thread": row["thread_id"],
                    "pb": pb,
                    "f": f,
                    "sibling_index": sibling_index,
                    "level": level + 1,
                    "jump_id": jump[0],
                    "jump_level": jump[1],
                    "jump_fork_depth": jump[2],
                },
            )
        ).scalar_one()
    params = {"m_thread_id": row["thread_id"], "p_user": user_id, "p_now": tx.now, "m_id": row["id"]}
    params |= {"m_branch_id": branch_id, "m_depth": f + 1}
    seq = (await tx.conn.execute(_AT_PLACE_SQLITE, params)).scalar_one_or_none()
    if seq is None:
        return None  # nothing was written: the branch row above is undone with the unit's transaction
    placed = {
        "seq": seq,
        "depth": f + 1,
        "sibling_index": sibling_index,
        "sibling_count": forks + 1 + (cont_idx is not None),
    }
    values = {name: row[name] for name in _GIVEN} | {"branch_id": branch_id, "parent_id": parent_id}
    await tx.conn.execute(_INSERT, [values | {"seq": seq, "depth": f + 1, "sibling_index": sibling_index}])
    await record(tx, event, placed, ("seq", "depth", "sibling_index", "sibling_count"))  # type: ignore[arg-type]
    return placed


async def thread_status(tx: Tx, user_id: str, thread_id: str) -> str | None:
    """The status of the owned thread a message belongs to; None if there is none."""
    if not storable(user_id, thread_id):
        return None
    stmt = select(threads.c.status).where(threads.c.id == thread_id, threads.c.user_id == user_id)
    return (await tx.conn.execute(stmt)).scalar_one_or_none()


_DIALECTS = ("postgresql", "sqlite")


def _read(sql: str, dialect: str) -> TextClause:
    return text(tree_sql.for_dialect(sql, dialect)).columns(  # type: ignore[return-value]
        created_at=UtcDateTime(), metadata=JsonDocument, parts=OptionalJson, feedback_at=UtcDateTime()
    )


_PATH_PAGES = {
    (order, dialect): _read(tree_sql.path_page(order, dialect), dialect)
    for order in ("asc", "desc")
    for dialect in _DIALECTS
}
_SIBLING_PAGES = {
    (order, dialect): _read(tree_sql.siblings_page(order, dialect), dialect)
    for order in ("asc", "desc")
    for dialect in _DIALECTS
}
_SEQ_PAGES = {
    (order, after, dialect): _read(tree_sql.seq_page(order, after), dialect)
    for order in ("asc", "desc")
    for after in (0, 1)
    for dialect in _DIALECTS
}
_ONE = {dialect: _read(tree_sql.ONE_MESSAGE, dialect) for dialect in _DIALECTS}
_POSITION = text(tree_sql.POSITION)


async def path_page(
    tx: Tx,
    user_id: str,
    thread_id: str,
    *,
    order: Order,
    limit: int,
    branch: int | None,
    leaf_depth: int | None = None,
    after: int = 0,
    before: int | None = None,
) -> list[RowMapping]:
    """A page of a path, by depth: the path to the thread's current message (`branch` None), or to the message
    at `leaf_depth` of `branch` (asc), or the path above `branch` from depth `before` up (desc)."""
    if not storable(user_id, thread_id):
        return []
    params = {"thread": thread_id, "user": user_id, "lim": limit, "sb": branch}
    if order == "asc":
        params |= {"after": after, "leaf_depth": leaf_depth}
    else:
        params["before"] = before
    return list((await tx.conn.execute(_PATH_PAGES[(order, tx.dialect)], params)).mappings().all())


async def position(tx: Tx, user_id: str, thread_id: str, message_id: str) -> RowMapping | None:
    """Where the owned thread's message is in its tree (branch_id, depth, parent_branch_id, fork_depth)."""
    if not storable(user_id, thread_id, message_id):
        return None
    params = {"mid": message_id, "thread": thread_id, "user": user_id}
    return (await tx.conn.execute(_POSITION, params)).mappings().first()


async def siblings_page(
    tx: Tx, user_id: str, thread_id: str, message_id: str, *, order: Order, limit: int, after: int | None
) -> list[RowMapping]:
    """The messages sharing `message_id`'s parent, by sibling_index, after the cursor's index."""
    if not storable(user_id, thread_id, message_id):
        return []
    bound = after if after is not None else (0 if order == "asc" else 2**31 - 1)
    params = {"mid": message_id, "thread": thread_id, "user": user_id, "lim": limit, "after": bound}
    return list((await tx.conn.execute(_SIBLING_PAGES[(order, tx.dialect)], params)).mappings().all())


async def seq_page(
    tx: Tx, user_id: str, thread_id: str, *, order: Order, limit: int, after: int | None
) -> list[RowMapping]:
    """Every message of the thread by seq (the (thread_id, seq) index: one range scan)."""
    if not storable(user_id, thread_id):
        return []
    params: dict[str, Any] = {"thread": thread_id, "user": user_id, "lim": limit}
    if after is not None:
        params["after"] = after
    stmt = _SEQ_PAGES[(order, int(after is not None), tx.dialect)]
    return list((await tx.conn.execute(stmt, params)).mappings().all())


async def get(tx: Tx, user_id: str, thread_id: str, message_id: str) -> RowMapping | None:
    if not storable(user_id, thread_id, message_id):
        return None
    params = {"mid": message_id, "thread": thread_id, "user": user_id}
    return (await tx.conn.execute(_ONE[tx.dialect], params)).mappings().first()


_FIRST_USER = {dialect: _read(tree_sql.first_user_on_path(dialect), dialect) for dialect in _DIALECTS}
_RENAME_WINDOW = 200


async def first_user_on_active_path(tx: Tx, thread_id: str, user_id: str) -> str | None:
    """The content of the first user message of the thread's active path, looked for a window of depths at a
    time (a user message is almost always in the first)."""
    after = 0
    while True:
        params = {"thread": thread_id, "user": user_id, "lim": _RENAME_WINDOW, "after": after}
        params |= {"sb": None, "leaf_depth": None}
        found = (await tx.conn.execute(_FIRST_USER[tx.dialect], params)).mappings().first()
        if found is not None:
            return str(found["content"])
        # No user message in the window: the next one, unless the window reached the path's end.
        window = await path_page(tx, user_id, thread_id, order="asc", limit=1, branch=None, after=after)
        if not window or after + _RENAME_WINDOW >= window[0]["leaf_depth"]:
            return None
        after += _RENAME_WINDOW


_DESCENT = {dialect: text(tree_sql.descent(dialect)) for dialect in ("postgresql", "sqlite")}


async def newest_leaf(tx: Tx, branch_id: int, depth: int) -> RowMapping | None:
    """The leaf reached from the message at `depth` of `branch_id` (depth 0 on the trunk: from the newest root)
    by following the child created last at each step: its id, branch_id and depth. None: no message there."""
    params = {"start_branch": branch_id, "start_depth": depth}
    return (await tx.conn.execute(_DESCENT[tx.dialect], params)).mappings().first()


_DELETE_TARGET = text(tree_sql.DELETE_TARGET)
_DELETE_SUBTREE = {dialect: [text(sql) for sql in sqls] for dialect, sqls in tree_sql.DELETE_SUBTREE.items()}
_NEWEST = text(tree_sql.NEWEST_MESSAGE).columns(created_at=UtcDateTime())
_EXISTS = text(tree_sql.MESSAGE_EXISTS)


@dataclass(frozen=True)
class Deleted:
    count: int
    # Where the deleted message hung: its parent's branch and depth (depth 0 on the trunk: it was a root).
    parent_branch_id: int
    parent_depth: int


async def delete_subtree(tx: Tx, thread_id: str, message_id: str) -> Deleted | None:
    """Deletes the message and all its descendants (in a transaction, under the thread's lock). None: the
    thread has no such message."""
    if not storable(message_id):
        return None
    target = (await tx.conn.execute(_DELETE_TARGET, {"mid": message_id, "thread": thread_id})).mappings().first()
    if target is None:
        return None
    params = {"b": target["b"], "d": target["d"], "drop_self": int(target["drop_self"])}
    if tx.dialect == "postgresql":
        count = int((await tx.conn.execute(_DELETE_SUBTREE["postgresql"][0], params)).scalar_one())
    else:  # two message deletes, whose row counts add up, then the branch rows
        count = 0
        for statement in _DELETE_SUBTREE["sqlite"]:
            deleted = (await tx.conn.execute(statement, params)).rowcount
            count += deleted if statement is not _DELETE_SUBTREE["sqlite"][2] else 0
    if target["drop_self"]:
        parent = (target["parent_branch_id"], target["fork_depth"])
    else:
        parent = (target["b"], target["d"] - 1)
    return Deleted(count, *parent)


async def newest_created_at(tx: Tx, thread_id: str) -> Any:
    """The creation time of the thread's newest message (None: it has none)."""
    return (await tx.conn.execute(_NEWEST, {"thread": thread_id})).scalar_one_or_none()


async def exists(tx: Tx, message_id: str | None) -> bool:
    if message_id is None:
        return False
    return (await tx.conn.execute(_EXISTS, {"mid": message_id})).first() is not None


_COPY_PATH_PG = text(tree_sql.for_dialect(tree_sql.COPY_PATH["postgresql"], "postgresql")).columns(
    created_at=UtcDateTime()
)
_COPY_PATH_SQLITE = text(tree_sql.for_dialect(tree_sql.COPY_PATH["sqlite"], "sqlite"))
_LAST_COPIED = text(tree_sql.LAST_COPIED).columns(created_at=UtcDateTime())


async def copy_path(tx: Tx, source_id: str, message_id: str, new_thread_id: str, trunk: int) -> RowMapping | None:
    """Copies the path root → `message_id` of thread `source_id` as a chain onto `trunk` of the new thread, in one
    statement. Returns the last copied message (id, seq = the number copied, created_at); None: no such
    message (any more)."""
    if not storable(message_id):
        return None
    params = {"mid": message_id, "source": source_id, "new_thread": new_thread_id, "trunk": trunk}
    if tx.dialect == "postgresql":
        return (await tx.conn.execute(_COPY_PATH_PG, params)).mappings().first()
    await tx.conn.execute(_COPY_PATH_SQLITE, params)
    return (await tx.conn.execute(_LAST_COPIED, {"new_thread": new_thread_id})).mappings().first()


_UNINDEXED = text(
    "SELECT id, content FROM messages WHERE thread_id = :thread AND search_terms IS NULL AND status <> 'in_progress'"
)
_SET_SEARCH_TERMS = update(messages).where(messages.c.id == bindparam("p_id")).values(search_terms=bindparam("p_terms"))


async def unindexed(tx: Tx, thread_id: str) -> list[RowMapping]:
    """The thread's finished messages that have no search terms yet (a fork's copies of unfinished replies)."""
    return list((await tx.conn.execute(_UNINDEXED, {"thread": thread_id})).mappings().all())


async def set_search_terms(tx: Tx, message_id: str, terms: Any) -> None:
    await tx.conn.execute(_SET_SEARCH_TERMS, {"p_id": message_id, "p_terms": terms})


# ------------------------------------------------------------------------------------------- streamed replies

_D_OFFSET = bindparam("d_offset", type_=Integer())
_D_GROWTH = bindparam("d_growth", type_=Integer())
# A delta: the text goes in as its own row, and the message row only moves its length and activity time, so
# the write is the delta's size however long the reply is (no column of an index changes: a HOT update on
# PostgreSQL). The offset check is the compare-and-set: of two writers at one offset, one matches.
_GROW = (
    update(messages)
    .where(
        messages.c.id == bindparam("d_message_id"),
        messages.c.thread_id == bindparam("d_thread_id"),
        threads.c.id == messages.c.thread_id,
        threads.c.user_id == bindparam("d_user"),
        threads.c.status == "active",
        messages.c.status == "in_progress",
        messages.c.parts.is_(None),
        messages.c.content_length == _D_OFFSET,
        messages.c.content_length + _D_GROWTH <= bindparam("d_limit", type_=Integer()),
    )
    .values(content_length=messages.c.content_length + _D_GROWTH, active_at=_NOW)
    .returning(messages.c.id, messages.c.content_length.label("length"))
)
_DELTA_ROW: dict[str, BindParameter[Any]] = {
    "message_id": bindparam("d_message_id"),
    "start": _D_OFFSET,
    "text": bindparam("d_text", type_=Text()),
}
_APPEND_DELTA_PG = WithEvent(
    _GROW,
    also=lambda grown: (
        insert(message_deltas).from_select(list(_DELTA_ROW), select(*_DELTA_ROW.values()).select_from(grown)).cte("c"),
    ),
)
_INSERT_DELTA = insert(message_deltas).values(_DELTA_ROW)


async def append_delta(
    tx: Tx, user_id: str, thread_id: str, message_id: str, offset: int, delta: str, limit: int, event: Event
) -> int | None:
    """Appends `delta` at `offset` of the unfinished string content of the owned active thread's message, if
    the stored length is `offset` and stays within `limit`; records `event`. Returns the new length, or None
    when nothing was written (`delta_state` tells why)."""
    if not storable(user_id, thread_id, message_id):
        return None
    params = {
        "d_message_id": message_id,
        "d_thread_id": thread_id,
        "d_user": user_id,
        "d_offset": offset,
        "d_growth": len(delta),
        "d_limit": limit,
        "d_text": delta,
        "p_now": tx.now,
    }
    if tx.dialect == "postgresql":
        grown = await _APPEND_DELTA_PG.execute(tx, params, event)
    else:
        grown = (await tx.conn.execute(_GROW, params)).mappings().first()
        if grown is not None:
            await tx.conn.execute(_INSERT_DELTA, params)
            await record(tx, event)
    return None if grown is None else int(grown["length"])


_DELTA_STATE = (
    select(
        messages.c.status,
        messages.c.parts.is_not(None).label("has_parts"),
        func.coalesce(messages.c.content_length, func.length(messages.c.content)).label("length"),
        func.length(messages.c.content).label("base"),
        threads.c.status.label("thread_status"),
    )
    .select_from(messages.join(threads, threads.c.id == messages.c.thread_id))
    .where(
        messages.c.id == bindparam("d_message_id"),
        messages.c.thread_id == bindparam("d_thread_id"),
        threads.c.user_id == bindparam("d_user"),
    )
)


# In a transaction, the message's row stays share-locked to the unit's end: the reads that follow (the stored
# text a retried delta is compared with) then see the message as this one did — no close can fold its deltas
# away, no delete remove it, in between.
_DELTA_STATE_LOCKED = _DELTA_STATE.with_for_update(read=True, of=messages)


async def delta_state(tx: Tx, user_id: str, thread_id: str, message_id: str) -> RowMapping | None:
    """Why a delta wrote nothing: the message's status, whether its content is parts, its stored length, the
    length of its text column (the part before any delta) and its thread's status. None: no such message.

    Read with the text it leads to in several statements, which outside a transaction a close or a delete could
    come between (a retry's text compared with a row since deleted or closed): there it raises Stale, so the
    unit runs again as a transaction, which reads under the row's lock. Only a delta that did not apply pays."""
    if not storable(user_id, thread_id, message_id):
        return None
    if not tx.in_transaction:
        raise Stale()
    params = {"d_message_id": message_id, "d_thread_id": thread_id, "d_user": user_id}
    return (await tx.conn.execute(_DELTA_STATE_LOCKED, params)).mappings().first()


_HEAD = select(func.substr(messages.c.content, _D_OFFSET + 1, _D_GROWTH)).where(
    messages.c.id == bindparam("d_message_id")
)
# The deltas that can overlap [offset, offset + n): one starting before offset is at most MAX_DELTA long.
_OVERLAPPING = (
    select(message_deltas.c.start, message_deltas.c.text)
    .where(
        message_deltas.c.message_id == bindparam("d_message_id"),
        message_deltas.c.start > _D_OFFSET - MAX_DELTA_CHARS,
        message_deltas.c.start < _D_OFFSET + _D_GROWTH,
    )
    .order_by(message_deltas.c.start)
)


async def stored_text(tx: Tx, message_id: str, offset: int, n: int, base: int, unfinished: bool) -> str:
    """The stored content's characters [offset, offset + n) (fewer where it is shorter). `base`: the length of the
    text column, which an unfinished reply's deltas follow. A bounded read: never the whole content."""
    params = {"d_message_id": message_id, "d_offset": offset, "d_growth": n}
    text_ = (await tx.conn.execute(_HEAD, params)).scalar_one() if offset < base else ""
    if not unfinished:
        return str(text_)
    pieces, position, end = [str(text_)], max(offset, base), offset + n
    for start, piece in (await tx.conn.execute(_OVERLAPPING, params)).all():
        if start + len(piece) <= position:
            continue
        taken = piece[position - start : end - start]
        pieces.append(taken)
        position += len(taken)
        if position >= end:
            break
    return "".join(pieces)


_LOCKED = (
    "SELECT t.status AS thread_status FROM messages m JOIN threads t ON t.id = m.thread_id"
    " WHERE m.id = :mid AND m.thread_id = :thread AND t.user_id = :user"
)
# The message's row lock orders a change after every delta (each updates that row) and before the next one.
_LOCK_MESSAGE = {"postgresql": text(_LOCKED + " FOR UPDATE OF m"), "sqlite": text(_LOCKED)}


async def lock(tx: Tx, user_id: str, thread_id: str, message_id: str) -> str | None:
    """Locks the owned thread's message for a change in this transaction (SQLite: the transaction's write
    lock already excludes every other writer). Returns its thread's status; None: no such message."""
    if not storable(user_id, thread_id, message_id):
        return None
    params = {"mid": message_id, "thread": thread_id, "user": user_id}
    status = (await tx.conn.execute(_LOCK_MESSAGE[tx.dialect], params)).scalar_one_or_none()
    return None if status is None else str(status)


_CHANGE = update(messages).where(messages.c.id == bindparam("p_message_id"))
_DROP_DELTAS = message_deltas.delete().where(message_deltas.c.message_id == bindparam("p_message_id"))


async def change(tx: Tx, message_id: str, values: dict[str, Any], *, drop_deltas: bool) -> None:
    """Sets `values` on the locked message; `drop_deltas`: its content now holds (or replaces) its deltas."""
    await tx.conn.execute(_CHANGE.values(values), {"p_message_id": message_id})
    if drop_deltas:
        await tx.conn.execute(_DROP_DELTAS, {"p_message_id": message_id})


_STALE = (
    "SELECT m.id, m.thread_id, t.user_id FROM messages m JOIN threads t ON t.id = m.thread_id"
    # The literal status lets PostgreSQL use the partial index of unfinished messages.
    " WHERE m.status = 'in_progress' AND m.active_at < :cutoff ORDER BY m.id LIMIT :lim"
)
# SKIP LOCKED: an instance's sweep passes over the messages another instance (or a PATCH) holds.
_STALE_LOCKED = {
    "postgresql": text(_STALE + " FOR UPDATE OF m SKIP LOCKED").bindparams(bindparam("cutoff", type_=UtcDateTime())),
    "sqlite": text(_STALE).bindparams(bindparam("cutoff", type_=UtcDateTime())),
}


async def lock_stale(tx: Tx, cutoff: Any, limit: int) -> list[RowMapping]:
    """Locks up to `limit` unfinished messages with no activity since `cutoff`: their id, thread_id, user_id."""
    rows = await tx.conn.execute(_STALE_LOCKED[tx.dialect], {"cutoff": cutoff, "lim": limit})
    return list(rows.mappings().all())
