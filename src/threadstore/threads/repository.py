"""All SQL about threads. Functions take the unit of work's `Tx`; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    TextualSelect,
    Update,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from threadstore.db.tables import UtcDateTime, threads
from threadstore.db.unit_of_work import Tx
from threadstore.events import outbox
from threadstore.events.publisher import wake_after_commit
from threadstore.limits import Limits

Row = Any  # a SQLAlchemy RowMapping: read-only, keyed by column name

COLUMNS = [c for c in threads.c if c.name != "user_id"]


def storable(*values: str) -> bool:
    """False when a value holds NUL: PostgreSQL text cannot, so no row matches it, and binding it is an error."""
    return all("\x00" not in value for value in values)


def _owned(user_id: str, thread_id: str) -> ColumnElement[bool]:
    if not storable(user_id, thread_id):
        return false()
    return and_(threads.c.id == thread_id, threads.c.user_id == user_id)


def later_of(now: datetime) -> ColumnElement[Any]:
    # updated_at never moves backwards, even if a unit of work that started earlier commits later.
    stamp = literal(now, UtcDateTime())
    return case((threads.c.updated_at > stamp, threads.c.updated_at), else_=stamp)


# Hot-path statements are built once with bind parameters: building a SQLAlchemy expression per request
# costs more than the compiled-statement cache saves (docs/performance.md).
_P_ID: BindParameter[str] = bindparam("p_id")
_P_USER: BindParameter[str] = bindparam("p_user")
_P_NOW = bindparam("p_now", type_=UtcDateTime())
_SELECT_OWNED = select(*COLUMNS).where(threads.c.id == _P_ID, threads.c.user_id == _P_USER)
_SELECT_OWNED_FOR_UPDATE = _SELECT_OWNED.with_for_update()
_BUMP_FOR_APPEND = (
    update(threads)
    .where(threads.c.id == _P_ID, threads.c.user_id == _P_USER, threads.c.status == "active")
    .values(
        message_count=threads.c.message_count + 1,
        version=threads.c.version + 1,
        updated_at=case((threads.c.updated_at > _P_NOW, threads.c.updated_at), else_=_P_NOW),
        last_message_at=case((threads.c.last_message_at > _P_NOW, threads.c.last_message_at), else_=_P_NOW),
    )
    .returning(threads.c.message_count)
)


_INSERT_WITH_EVENT = outbox.InsertWithEvent(threads)


async def insert_thread(tx: Tx, values: dict[str, Any], *, event: tuple[str, str, dict[str, Any]]) -> None:
    """Inserts the thread and records its event (user id, type, data) in one statement where possible."""
    await _INSERT_WITH_EVENT.execute(tx, values, *event)


async def get_owned(tx: Tx, user_id: str, thread_id: str, *, for_update: bool = False) -> Row | None:
    if not storable(user_id, thread_id):
        return None
    stmt = _SELECT_OWNED_FOR_UPDATE if for_update else _SELECT_OWNED
    return (await tx.conn.execute(stmt, {"p_id": thread_id, "p_user": user_id})).mappings().first()


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
    if not storable(user_id, title_contains or "", *(part for pair in metadata_equals for part in pair)):
        return []
    stmt = _list_statement(tx.dialect, status == "all", after is not None, bool(title_contains), len(metadata_equals))
    params: dict[str, Any] = {"p_user": user_id, "p_status": status, "p_limit": limit}
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
def _list_statement(dialect: str, any_status: bool, after: bool, title: bool, metadata_filters: int) -> Select[Any]:
    stmt: Select[Any] = select(*COLUMNS).where(threads.c.user_id == bindparam("p_user"))
    if not any_status:
        stmt = stmt.where(threads.c.status == bindparam("p_status"))
    if after:
        # Row-value comparison: the (user_id[, status], updated_at, id) index serves it as one range scan.
        stmt = stmt.where(
            tuple_(threads.c.updated_at, threads.c.id)
            < tuple_(bindparam("p_after_ts", type_=UtcDateTime()), bindparam("p_after_id"))
        )
    if title:
        stmt = stmt.where(_title_contains(dialect))
    for i in range(metadata_filters):
        stmt = stmt.where(_metadata_equals(dialect, i))
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


async def bump_for_append(tx: Tx, user_id: str, thread_id: str) -> int | None:
    """Counts one more message atomically; returns its seq, or None if no active owned thread."""
    if not storable(user_id, thread_id):
        return None
    params = {"p_id": thread_id, "p_user": user_id, "p_now": tx.now}
    seq: int | None = (await tx.conn.execute(_BUMP_FOR_APPEND, params)).scalar_one_or_none()
    return seq


async def update_owned(
    tx: Tx, user_id: str, thread_id: str, values: dict[str, Any], *, expected_version: int | None = None
) -> Row | None:
    """Applies `values` as one change (version + 1); with `expected_version`, only if it has not moved."""
    if not storable(user_id, thread_id):
        return None
    stmt = _update_statement(tuple(sorted(values)), expected_version is not None)
    params = {"p_id": thread_id, "p_user": user_id, "p_now": tx.now, **{f"v_{k}": v for k, v in values.items()}}
    if expected_version is not None:
        params["p_version"] = expected_version
    return (await tx.conn.execute(stmt, params)).mappings().first()


@lru_cache(maxsize=64)
def _update_statement(columns: tuple[str, ...], check_version: bool) -> Update:
    # Built once per set of changed columns: building a fresh UPDATE per request and generating its cache key
    # took ~9% of a PATCH's server CPU (docs/performance.md).
    return _update(columns, check_version).returning(*COLUMNS)


def _update(columns: tuple[str, ...], check_version: bool) -> Update:
    stmt = update(threads).where(threads.c.id == _P_ID, threads.c.user_id == _P_USER)
    if check_version:
        stmt = stmt.where(threads.c.version == bindparam("p_version"))
    changes: dict[str, Any] = {name: bindparam(f"v_{name}", type_=threads.c[name].type) for name in columns}
    changes["version"] = threads.c.version + 1
    changes["updated_at"] = case((threads.c.updated_at > _P_NOW, threads.c.updated_at), else_=_P_NOW)
    return stmt.values(changes)


async def update_if_version(
    tx: Tx, user_id: str, thread_id: str, values: dict[str, Any], version: int, *, event: dict[str, Any]
) -> dict[str, Any] | None:
    """Applies `values` as one change (version + 1) only if the thread is still at `version` (a compare-and-
    set, safe without a lock between the read and this write) and records `event`, the new thread as the API
    shows it, as `thread.updated`. Returns the stored metadata, or None if nothing matched."""
    if not storable(user_id, thread_id):
        return None
    params = {"p_id": thread_id, "p_user": user_id, "p_now": tx.now, "p_version": version}
    params |= {f"v_{k}": v for k, v in values.items()}
    statement = _update_with_event(tuple(sorted(values)))
    around = outbox.splice(event, "metadata")
    row = await statement.execute(tx, params, user_id, outbox.THREAD_UPDATED, around)
    return None if row is None else dict(row[0])


@lru_cache(maxsize=64)
def _update_with_event(columns: tuple[str, ...]) -> outbox.UpdateWithEvent:
    return outbox.UpdateWithEvent(_update(columns, check_version=True).returning(threads.c.metadata))


async def merge_in_place(
    tx: Tx,
    user_id: str,
    thread_id: str,
    *,
    title: tuple[str | None] | None,
    metadata_patch: dict[str, Any] | None,
    version: int | None,
    limits: Limits,
) -> Row | None:
    """PostgreSQL: sets `title` (a 1-tuple, when given) and merges `metadata_patch`, a flat RFC 7396 patch (no
    object values), in one UPDATE that also records the `thread.updated` event, if the thread is active, at
    `version` (when given), really changes, and its merged metadata fits `limits`. Returns the new row, or
    None when any of that fails: the caller then decides on the row (not found, stale, archived, no change,
    too large). The merge reads the row the UPDATE locked, so concurrent patches cannot lose keys."""
    if not storable(user_id, thread_id):
        return None
    params: dict[str, Any] = {"p_id": thread_id, "p_user": user_id, "p_now": tx.now}
    if version is not None:
        params["p_version"] = version
    if title is not None:
        params["p_title"] = title[0]
    if metadata_patch is not None:
        params["p_set"] = {key: value for key, value in metadata_patch.items() if value is not None}
        params["p_remove"] = [key for key, value in metadata_patch.items() if value is None]
        params |= {"p_max_keys": limits.metadata_keys, "p_max_key_chars": limits.metadata_key_chars}
        params["p_max_bytes"] = limits.metadata_bytes
    params |= outbox.event_params(tx, user_id, outbox.THREAD_UPDATED)
    statement = _merge_statement(title is not None, metadata_patch is not None, version is not None)
    row = (await tx.conn.execute(statement, params)).mappings().first()
    if row is not None:
        wake_after_commit(tx)
    return row


# The event's data is the thread as the API shows it (threads/schemas.py `thread_json`), built from the
# updated row by the same statement: RFC 3339 UTC with milliseconds, like `timestamps.rfc3339`.
_RFC3339 = """to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
_THREAD_JSON = (
    "json_build_object('id', w.id, 'object', 'thread', 'title', w.title, 'metadata', w.metadata,"
    " 'status', w.status, 'created_at', {created}, 'updated_at', {updated}, 'archived_at', {archived},"
    " 'message_count', w.message_count, 'last_message_at', {last}, 'version', w.version)::text"
).format(
    created=_RFC3339.format("w.created_at"),
    updated=_RFC3339.format("w.updated_at"),
    archived=_RFC3339.format("w.archived_at"),
    last=_RFC3339.format("w.last_message_at"),
)
# A flat merge patch with built-in operators: remove the keys set to null, then set the others.
_MERGED = "((threads.metadata - CAST(:p_remove AS text[])) || :p_set)"
# The limits of `Limits.metadata`, never looser: keys and key lengths exactly; the size as jsonb's text, which
# is never shorter than the compact JSON the API measures (it adds a space after every ':' and ','; integers,
# strings and escapes print alike; floats are kept off this path). A miss falls back to the exact check.
_FITS = (
    f"octet_length({_MERGED}::text) <= :p_max_bytes"
    f" AND (SELECT count(*) <= :p_max_keys AND coalesce(bool_and(char_length(key) BETWEEN 1 AND :p_max_key_chars),"
    f" true) FROM jsonb_object_keys({_MERGED}) AS key)"
)


@lru_cache(maxsize=8)
def _merge_statement(set_title: bool, merge_metadata: bool, check_version: bool) -> TextualSelect:
    sets, changed = [], []
    if set_title:
        sets.append("title = :p_title")
        changed.append("threads.title IS DISTINCT FROM :p_title")
    if merge_metadata:
        sets.append(f"metadata = {_MERGED}")
        changed.append(f"{_MERGED} IS DISTINCT FROM threads.metadata")
    conditions = [
        "threads.id = :p_id",
        "threads.user_id = :p_user",
        "threads.status = 'active'",
        f"({' OR '.join(changed)})",
    ]
    if check_version:
        conditions.append("threads.version = :p_version")
    if merge_metadata:
        conditions.append(_FITS)
    columns = ", ".join(c.name for c in COLUMNS)
    sql = (
        f"WITH w AS (UPDATE threads SET {', '.join(sets)}, version = threads.version + 1,"
        " updated_at = CASE WHEN threads.updated_at > :p_now THEN threads.updated_at ELSE :p_now END"
        f" WHERE {' AND '.join(conditions)} RETURNING {columns}),"
        f" e AS ({outbox.insert_from_sql('w', _THREAD_JSON)})"
        f" SELECT {columns} FROM w"
    )
    binds: list[BindParameter[Any]] = [
        bindparam("p_now", type_=UtcDateTime()),
        bindparam("e_created_at", type_=UtcDateTime()),
    ]
    if check_version:
        binds.append(bindparam("p_version", type_=Integer()))
    if merge_metadata:
        binds.append(bindparam("p_set", type_=JSONB()))
    return text(sql).bindparams(*binds).columns(*COLUMNS)


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
