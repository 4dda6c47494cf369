"""Rules about threads. Every function runs inside a unit of work it is handed; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from threadstore import cursors
from threadstore.db.unit_of_work import StaleRead, Tx
from threadstore.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from threadstore.events import outbox
from threadstore.ids import new_id
from threadstore.limits import Limits
from threadstore.messages import repository as messages_repo
from threadstore.messages.schemas import MessageCreate
from threadstore.threads import repository
from threadstore.threads.merge_patch import merge_patch
from threadstore.threads.schemas import ThreadCreate, ThreadPatch, thread_json

NOT_FOUND = "No thread with this id."


def same_json(a: Any, b: Any) -> bool:
    # Not `a == b`: Python holds True == 1 and 0 == False, so a change of JSON type would go unseen.
    option = orjson.OPT_SORT_KEYS
    return orjson.dumps(a, option=option) == orjson.dumps(b, option=option)


def not_found() -> NotFound:
    # One message for "missing" and "someone else's": the two must be indistinguishable.
    return NotFound(NOT_FOUND)


async def create(tx: Tx, user_id: str, body: ThreadCreate, limits: Limits) -> dict[str, Any]:
    title = limits.title(body.title, ("body", "title")) if body.title is not None else None
    metadata = limits.metadata(body.metadata or {}, ("body", "metadata"))
    initial = body.messages or []
    limits.initial_message_count(len(initial), ("body", "messages"))
    thread_id = new_id("thr")
    message_rows = [_message_row(thread_id, seq, m, tx.now, limits) for seq, m in enumerate(initial, start=1)]
    values = {
        "id": thread_id,
        "user_id": user_id,
        "title": title,
        "metadata": metadata,
        "status": "active",
        "created_at": tx.now,
        "updated_at": tx.now,
        "archived_at": None,
        "message_count": len(message_rows),
        "last_message_at": tx.now if message_rows else None,
        "version": 1,
    }
    thread = thread_json(values)
    await repository.insert_thread(tx, values, event=(user_id, outbox.THREAD_CREATED, thread))
    await messages_repo.insert_messages(tx, message_rows)
    return thread


def _message_row(thread_id: str, seq: int, message: MessageCreate, now: datetime, limits: Limits) -> dict[str, Any]:
    loc = ("body", "messages", seq - 1)
    return {
        "id": new_id("msg"),
        "thread_id": thread_id,
        "seq": seq,
        "role": message.role,
        "content": limits.content(message.content, (*loc, "content")),
        "metadata": limits.metadata(message.metadata, (*loc, "metadata")),
        "created_at": now,
    }


async def get(tx: Tx, user_id: str, thread_id: str) -> dict[str, Any]:
    row = await repository.get_owned(tx, user_id, thread_id)
    if row is None:
        raise not_found()
    return thread_json(row)


@dataclass(frozen=True)
class ListQuery:
    status: str
    limit: int
    cursor: str | None
    q: str | None
    metadata: Sequence[tuple[str, str]]


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
    in_place = _in_place(body, limits) if tx.autocommit else None
    if in_place is not None:
        # The common PATCH (title and/or flat metadata of an active thread) as one UPDATE: merge, limits,
        # version check and event on the database side. Anything it does not apply is decided below on the row.
        row = await repository.merge_in_place(
            tx,
            user_id,
            thread_id,
            title=in_place.title,
            metadata_patch=in_place.metadata,
            version=if_match,
            limits=limits,
        )
        if row is not None:
            return thread_json(row)
    # Read, decide, then write only if the thread is still at the version read (a compare-and-set): a
    # concurrent change makes the write match nothing and the unit runs again, then under a row lock
    # (`tx.autocommit` False), so concurrent patches never overwrite each other's keys.
    row = await repository.get_owned(tx, user_id, thread_id, for_update=not tx.autocommit)
    if row is None:
        raise not_found()
    if if_match is not None and if_match != row["version"]:
        raise PreconditionFailed("The thread has changed since the version given in If-Match.")
    changes: dict[str, Any] = {}
    if "title" in fields:
        title = limits.title(body.title, ("body", "title")) if body.title is not None else None
        if title != row["title"]:
            changes["title"] = title
    if "metadata" in fields and body.metadata is not None:
        merged = merge_patch(row["metadata"], body.metadata)
        limits.metadata(merged, ("body", "metadata"))
        if not same_json(merged, row["metadata"]):
            changes["metadata"] = merged
    new_status = body.status if "status" in fields else row["status"]
    # Only a thread that is archived and stays so is frozen; archiving and editing in one PATCH is one change.
    if changes and row["status"] == "archived" and new_status == "archived":
        raise Conflict("An archived thread cannot be changed; restore it with status 'active' first.")
    if new_status != row["status"]:
        changes["status"] = new_status
        changes["archived_at"] = tx.now if new_status == "archived" else None
    if not changes:
        return thread_json(row)
    # The new row is known exactly: the version check guarantees the update applies to the row read. Only
    # metadata is taken back from the database, which normalizes JSON as it stores it.
    thread = thread_json(
        {**row, **changes, "version": row["version"] + 1, "updated_at": max(row["updated_at"], tx.now)}
    )
    stored = await repository.update_if_version(tx, user_id, thread_id, changes, row["version"], event=thread)
    if stored is None:
        raise StaleRead()
    return thread | {"metadata": stored}


@dataclass(frozen=True)
class _InPlace:
    title: tuple[str | None] | None  # (new title,) when the PATCH sets one
    metadata: dict[str, Any] | None


def _in_place(body: ThreadPatch, limits: Limits) -> _InPlace | None:
    """What a PATCH changes, if it can be applied as one UPDATE (`repository.merge_in_place`)."""
    fields = body.model_fields_set
    if "status" in fields or not fields & {"title", "metadata"}:
        return None
    title = None
    if "title" in fields:
        try:
            title = (limits.title(body.title, ("body", "title")) if body.title is not None else None,)
        except Unprocessable:
            return None  # reported by the general path, after "not found", as always
    # Nested objects merge recursively, in Python. Floats too: the database's size measure is a safe bound only
    # for numbers it prints as they were sent.
    nested = body.metadata is not None and any(isinstance(value, dict) for value in body.metadata.values())
    if nested or _holds_float(body.metadata):
        return None
    return _InPlace(title=title, metadata=body.metadata if "metadata" in fields else None)


def _holds_float(document: Any) -> bool:
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


async def archive(tx: Tx, user_id: str, thread_id: str) -> dict[str, Any]:
    row = await repository.archive_if_active(tx, user_id, thread_id)
    if row is not None:
        thread = thread_json(row)
        await outbox.record(tx, user_id, outbox.THREAD_UPDATED, thread)
        return thread
    current = await repository.get_owned(tx, user_id, thread_id)
    if current is None:
        raise not_found()
    return thread_json(current)  # already archived: idempotent, no new version


async def delete_permanently(tx: Tx, user_id: str, thread_id: str) -> None:
    if not await repository.delete_owned(tx, user_id, thread_id):
        raise not_found()
    await outbox.record(tx, user_id, outbox.THREAD_DELETED, {"id": thread_id})


@dataclass(frozen=True)
class RenameSource:
    version: int
    text: str


async def rename_source(tx: Tx, user_id: str, thread_id: str) -> RenameSource:
    row = await repository.get_owned(tx, user_id, thread_id)
    if row is None:
        raise not_found()
    if row["status"] != "active":
        raise Conflict("An archived thread cannot be renamed; restore it first.")
    first = await messages_repo.first_by_role(tx, thread_id, "user")
    if first is None:
        raise Unprocessable(
            "The thread has no user message to title it from.",
            errors=[{"loc": ["thread", "messages"], "msg": "no user message"}],
        )
    return RenameSource(version=row["version"], text=first["content"])


async def apply_title(tx: Tx, user_id: str, thread_id: str, title: str, expected_version: int) -> dict[str, Any]:
    """Sets a generated title only if the thread is still at the version the title was made from."""
    current = await repository.get_owned(tx, user_id, thread_id, for_update=True)
    if current is None:
        raise not_found()
    if current["version"] != expected_version or current["status"] != "active":
        raise Conflict("The thread changed while its title was being generated; nothing was applied.")
    if current["title"] == title:
        return thread_json(current)
    row = await repository.update_owned(tx, user_id, thread_id, {"title": title}, expected_version=expected_version)
    if row is None:
        raise Conflict("The thread changed while its title was being generated; nothing was applied.")
    thread = thread_json(row)
    await outbox.record(tx, user_id, outbox.THREAD_UPDATED, thread)
    return thread
