"""Rules about messages. Every function runs inside a unit of work it is handed; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from threadstore import cursors
from threadstore.db.outbox import MESSAGE_CREATED, Event
from threadstore.db.unit_of_work import Tx, from_replica, one_write
from threadstore.errors import Conflict, thread_not_found
from threadstore.ids import new_id
from threadstore.limits import Limits
from threadstore.messages import repository
from threadstore.messages.schemas import MessageCreate, message_json


@one_write
async def append(tx: Tx, user_id: str, thread_id: str, body: MessageCreate, limits: Limits) -> dict[str, Any]:
    row = _row(tx, thread_id, None, body, limits, ("body",))
    message = message_json(row)
    # The seq is handed out by the write, which counts one more message on the thread atomically; the row lock
    # it takes orders concurrent appends, so seqs are gapless and in commit order.
    # A finished message's content never changes, so its event refers to it instead of copying it.
    event = Event(user_id, thread_id, MESSAGE_CREATED, message, stored="seq", content_of=message["id"])
    seq = await repository.append(tx, user_id, row, event)
    if seq is None:
        if await repository.thread_status(tx, user_id, thread_id) is None:
            raise thread_not_found()
        raise Conflict("The thread is archived; restore it before adding messages.")
    return message | {"seq": seq}


def initial_rows(tx: Tx, thread_id: str, initial: Sequence[MessageCreate], limits: Limits) -> list[dict[str, Any]]:
    """The rows of a new thread's first messages, numbered from 1 (its creation writes them)."""
    limits.initial_message_count(len(initial), ("body", "messages"))
    return [_row(tx, thread_id, seq, m, limits, ("body", "messages", seq - 1)) for seq, m in enumerate(initial, 1)]


def _row(
    tx: Tx, thread_id: str, seq: int | None, body: MessageCreate, limits: Limits, loc: tuple[str | int, ...]
) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "thread_id": thread_id,
        "seq": seq,
        "role": body.role,
        "content": limits.content(body.content, (*loc, "content")),
        "metadata": limits.metadata(body.metadata, (*loc, "metadata")),
        "created_at": tx.now,
    }


@from_replica
async def list_messages(
    tx: Tx, user_id: str, thread_id: str, *, limit: int, cursor: str | None, order: Literal["asc", "desc"]
) -> dict[str, Any]:
    after = cursors.decode_seq_cursor(cursor) if cursor else None
    rows = await repository.page(tx, user_id, thread_id, after_seq=after, order=order, limit=limit + 1)
    if not rows and await repository.thread_status(tx, user_id, thread_id) is None:
        raise thread_not_found()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursors.encode(rows[-1]["seq"]) if has_more else None
    return {"object": "list", "data": [message_json(r) for r in rows], "next_cursor": next_cursor, "has_more": has_more}


async def first_user_text(tx: Tx, thread_id: str) -> str | None:
    """The content of the thread's first user message, which titles it."""
    row = await repository.first_by_role(tx, thread_id, "user")
    return None if row is None else str(row["content"])
