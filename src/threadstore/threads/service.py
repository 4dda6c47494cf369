"""Rules about threads. Every function runs inside a unit of work it is handed; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from threadstore import cursors
from threadstore.db.failures import Stale
from threadstore.db.outbox import MESSAGE_DELETED, THREAD_CREATED, THREAD_DELETED, THREAD_UPDATED, Event, record
from threadstore.db.unit_of_work import Tx, from_replica, one_write
from threadstore.errors import Conflict, PreconditionFailed, Unprocessable, thread_not_found
from threadstore.events import service as events
from threadstore.idempotency import service as idempotency
from threadstore.ids import new_id
from threadstore.limits import Limits
from threadstore.merge_patch import merge_patch, same_json
from threadstore.messages import service as messages
from threadstore.search.index import indexed
from threadstore.threads import repository
from threadstore.threads.schemas import ThreadCreate, ThreadFork, ThreadPatch, thread_json


@one_write
async def create(tx: Tx, user_id: str, body: ThreadCreate, limits: Limits) -> dict[str, Any]:
    title = limits.title(body.title, ("body", "title")) if body.title is not None else None
    metadata = limits.metadata(body.metadata or {}, ("body", "metadata"))
    thread_id = new_id("thr")
    initial = messages.initial_rows(tx, user_id, thread_id, body.messages or [], limits)
    values = {
        "id": thread_id,
        "user_id": user_id,
        "title": title,
        "metadata": metadata,
        "status": "active",
        "created_at": tx.now,
        "updated_at": tx.now,
        "archived_at": None,
        "message_count": len(initial),
        "last_message_at": tx.now if initial else None,
        "version": 1,
        "current_message_id": initial[-1]["id"] if initial else None,
        "current_branch_id": None,  # the trunk's: the write draws it
        "current_depth": len(initial),
        "deleted_count": 0,
        "search_terms": indexed(user_id, title),
    }
    thread = thread_json(values)
    await repository.insert_thread(tx, values, initial, Event(user_id, thread_id, THREAD_CREATED, thread))
    return thread


@from_replica
async def get(tx: Tx, user_id: str, thread_id: str) -> dict[str, Any]:
    row = await repository.get(tx, user_id, thread_id)
    if row is None:
        raise thread_not_found()
    return thread_json(row)


async def require_owned(tx: Tx, user_id: str, thread_id: str) -> None:
    """Not found unless the user has this thread now. On the primary, not `@from_replica`: an event stream
    that follows one thread decides on it where it starts (events/router.py), and a replica may not have
    replayed a thread just created, or its deletion, yet — nor can a browser's EventSource send X-Read-After."""
    if await repository.get(tx, user_id, thread_id) is None:
        raise thread_not_found()


@dataclass(frozen=True)
class ListQuery:
    status: str
    limit: int
    cursor: str | None
    q: str | None
    metadata: Sequence[tuple[str, str]]


@from_replica
async def list_threads(tx: Tx, user_id: str, query: ListQuery) -> dict[str, Any]:
    after = cursors.decode_thread_cursor(query.cursor) if query.cursor else None
    rows = await repository.list_page(
        tx,
        user_id,
        status=query.status,
        limit=query.limit + 1,  # one extra row tells whether there is a next page without a COUNT
        after=after,
        title_contains=query.q or None,
        metadata_equals=query.metadata,
    )
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = cursors.encode_thread_cursor(rows[-1]["updated_at"], rows[-1]["id"]) if has_more else None
    return {"object": "list", "data": [thread_json(r) for r in rows], "next_cursor": next_cursor, "has_more": has_more}


@one_write
async def patch(
    tx: Tx, user_id: str, thread_id: str, body: ThreadPatch, if_match: int | None, limits: Limits
) -> dict[str, Any]:
    fields = body.model_fields_set
    if "metadata" in fields and body.metadata is None:
        raise Unprocessable(
            "metadata cannot be null; send an object (a key set to null removes that key).",
            errors=[{"loc": ["body", "metadata"], "msg": "must be an object"}],
        )
    if "status" in fields and body.status is None:
        raise Unprocessable("status cannot be null.", errors=[{"loc": ["body", "status"], "msg": "must be a string"}])
    if "current_message_id" in fields and body.current_message_id is None:
        raise Unprocessable(
            "current_message_id cannot be null; name a message of the thread.",
            errors=[{"loc": ["body", "current_message_id"], "msg": "must be a string"}],
        )
    row = await _for_change(tx, user_id, thread_id)
    if if_match is not None and if_match != row["version"]:
        raise PreconditionFailed("The thread has changed since the version given in If-Match.")
    changes: dict[str, Any] = {}
    if "title" in fields:
        title = limits.title(body.title, ("body", "title")) if body.title is not None else None
        if title != row["title"]:
            changes["title"] = title
    if "metadata" in fields and body.metadata is not None:
        merged = merge_patch(row["metadata"], body.metadata)
        limits.metadata(merged, ("body", "metadata"), kept=row["metadata"].keys())
        if not same_json(merged, row["metadata"]):
            changes["metadata"] = merged
    if "current_message_id" in fields:
        changes |= await _current_change(tx, user_id, row, body.current_message_id)
    new_status = body.status or row["status"]
    # Only a thread that is archived and stays so is frozen; archiving and editing in one PATCH is one change.
    if changes and row["status"] == "archived" and new_status == "archived":
        raise Conflict(
            "An archived thread cannot be changed; restore it with status 'active' first.", reason="archived"
        )
    if new_status != row["status"]:
        changes |= _status_change(new_status, tx)
    return await _change(tx, user_id, row, changes)


async def _current_change(tx: Tx, user_id: str, row: RowMapping, message_id: str | None) -> dict[str, Any]:
    """The branch switch: the stored current message is the leaf reached from `message_id` by following the
    child created last, so the thread shows that branch's latest conversation and its current is a leaf."""
    leaf = await messages.newest_leaf_from(tx, user_id, row["id"], message_id or "")
    if leaf is None:
        raise messages.not_a_message_of_the_thread(("body", "current_message_id"))
    if leaf.id == row["current_message_id"]:
        return {}
    return {"current_message_id": leaf.id, "current_branch_id": leaf.branch_id, "current_depth": leaf.depth}


@one_write
async def archive(tx: Tx, user_id: str, thread_id: str) -> dict[str, Any]:
    """Archives the thread; an archived one is returned as it is (idempotent, no new version)."""
    row = await _for_change(tx, user_id, thread_id)
    changes = _status_change("archived", tx) if row["status"] != "archived" else {}
    return await _change(tx, user_id, row, changes)


def _status_change(status: str, tx: Tx) -> dict[str, Any]:
    return {"status": status, "archived_at": tx.now if status == "archived" else None}


async def delete_permanently(tx: Tx, user_id: str, thread_id: str) -> None:
    """Deletes the thread and its messages, and erases what of them the kept events hold and the stored
    responses of the keys that wrote its content (a repeat of one answers 404): three statements, so a
    transaction, whole or not at all.

    The delete goes first. It takes the thread's row, which a write to the thread holds locked until it
    commits (a keyed append with its key, any change with its event), so the erasures see everything written
    to the thread: a write that had the row first committed before the delete went on (on READ COMMITTED the
    erasures, later statements, have fresh snapshots; on the stricter levels the delete fails as a
    serialization conflict and the unit runs again), and one that comes after finds no thread and writes
    nothing. Erasing first would miss a write that commits between the statements."""
    deleted = Event(user_id, thread_id, THREAD_DELETED, {"id": thread_id})
    if not await repository.delete_owned(tx, user_id, thread_id, deleted):
        raise thread_not_found()
    await idempotency.forget_thread(tx, user_id, thread_id)
    await events.erase_thread(tx, user_id, thread_id)


async def delete_branch(tx: Tx, user_id: str, thread_id: str, message_id: str) -> None:
    """Deletes a message and all its descendants, as one change of the thread: `message.deleted`, then
    `thread.updated` with the counts, `last_message_at` and, if the current message went, the leaf reached from
    the deleted message's parent. Stored responses of the keys that created deleted messages are erased.

    A transaction that locks the thread first: every statement after the lock sees every write committed
    before it, and an append under the branch either committed before (and is deleted with it) or finds its
    parent gone."""
    row = await _for_change(tx, user_id, thread_id)
    if row["status"] == "archived":
        raise Conflict(
            "An archived thread cannot be changed; restore it with status 'active' first.", reason="archived"
        )
    deleted = await messages.delete_subtree(tx, thread_id, message_id)
    changes: dict[str, Any] = {
        "deleted_count": row["deleted_count"] + deleted.count,
        "last_message_at": await messages.newest_created_at(tx, thread_id),
    }
    if not await messages.exists(tx, row["current_message_id"]):
        leaf = await messages.newest_leaf_at(tx, deleted.parent_branch_id, deleted.parent_depth)
        changes |= {"current_message_id": leaf.id, "current_branch_id": leaf.branch_id, "current_depth": leaf.depth}
    await idempotency.forget_deleted_messages(tx, user_id, thread_id)
    data = {"id": message_id, "thread_id": thread_id, "deleted_count": deleted.count}
    await record(tx, Event(user_id, thread_id, MESSAGE_DELETED, data))
    await _change(tx, user_id, row, changes)


async def fork(tx: Tx, user_id: str, thread_id: str, body: ThreadFork, limits: Limits) -> dict[str, Any]:
    """A new thread holding a copy of the source's path root → message (default: the current one), as a chain.
    The copy is one statement, so the path is as of one moment whatever is appended meanwhile."""
    fields = body.model_fields_set
    for name in ("message_id", "metadata"):
        if name in fields and getattr(body, name) is None:
            raise Unprocessable(f"{name} cannot be null.", errors=[{"loc": ["body", name], "msg": "must not be null"}])
    source = await repository.get(tx, user_id, thread_id)
    if source is None:
        raise thread_not_found()
    title = source["title"]
    if "title" in fields:
        title = limits.title(body.title, ("body", "title")) if body.title is not None else None
    metadata = source["metadata"] if body.metadata is None else limits.metadata(body.metadata, ("body", "metadata"))
    new_thread_id = new_id("thr")
    values = {
        "id": new_thread_id,
        "user_id": user_id,
        "title": title,
        "metadata": metadata,
        "status": "active",
        "created_at": tx.now,
        "updated_at": tx.now,
        "archived_at": None,
        "message_count": 0,
        "last_message_at": None,
        "version": 1,
        "current_message_id": None,
        "current_branch_id": None,  # the trunk's: the insert draws it
        "current_depth": 0,
        "deleted_count": 0,
        "search_terms": indexed(user_id, title),
    }
    trunk = await repository.insert_fork(tx, values)
    message_id = body.message_id if body.message_id is not None else source["current_message_id"]
    if message_id is not None:
        last = await messages.copy_path(tx, user_id, thread_id, message_id, new_thread_id, trunk)
        if last is None:
            if body.message_id is None:
                raise Stale()  # the current message was deleted since it was read: again, with the new one
            raise messages.not_a_message_of_the_thread(("body", "message_id"))
        values |= {
            "message_count": last["seq"],
            "current_depth": last["seq"],
            "current_message_id": last["id"],
            "last_message_at": last["created_at"],
        }
    thread = thread_json(values)
    await repository.finish_fork(tx, new_thread_id, values, Event(user_id, new_thread_id, THREAD_CREATED, thread))
    return thread


@dataclass(frozen=True)
class RenameSource:
    version: int
    text: str


async def rename_source(tx: Tx, user_id: str, thread_id: str) -> RenameSource:
    row = await repository.get(tx, user_id, thread_id)
    if row is None:
        raise thread_not_found()
    if row["status"] != "active":
        raise Conflict("An archived thread cannot be renamed; restore it first.", reason="archived")
    text = await messages.first_user_text(tx, user_id, thread_id)
    if text is None:
        raise Unprocessable(
            "The thread has no user message to title it from.",
            errors=[{"loc": ["thread", "messages"], "msg": "no user message"}],
        )
    return RenameSource(version=row["version"], text=text)


@one_write
async def apply_title(tx: Tx, user_id: str, thread_id: str, title: str, expected_version: int) -> dict[str, Any]:
    """Sets a generated title only if the thread is still at the version the title was made from."""
    row = await _for_change(tx, user_id, thread_id)
    if row["version"] != expected_version or row["status"] != "active":
        raise Conflict("The thread changed while its title was being generated; nothing was applied.", reason="version")
    return await _change(tx, user_id, row, {"title": title} if row["title"] != title else {})


async def _for_change(tx: Tx, user_id: str, thread_id: str) -> RowMapping:
    row = await repository.get_for_change(tx, user_id, thread_id)
    if row is None:
        raise thread_not_found()
    return row


async def _change(tx: Tx, user_id: str, row: RowMapping, changes: dict[str, Any]) -> dict[str, Any]:
    """Every change of a thread: one new version of the row read, and its `thread.updated` event."""
    if not changes:
        return thread_json(row)
    if "title" in changes:
        changes["search_terms"] = indexed(user_id, changes["title"])
    # updated_at never moves backwards, even when a unit that started earlier commits later.
    changes["updated_at"] = max(row["updated_at"], tx.now)
    # The new row is known exactly: the write applies only to the version read. Only metadata is taken back
    # from the database, which normalizes JSON as it stores it.
    thread = thread_json({**row, **changes, "version": row["version"] + 1})
    event = Event(user_id, row["id"], THREAD_UPDATED, thread, stored="metadata")
    stored = await repository.update_at_version(tx, user_id, row["id"], changes, row["version"], event)
    return thread | {"metadata": stored}
