"""Rules about messages. Every function runs inside a unit of work it is handed; none commits."""

from __future__ import annotations

from typing import Any, Literal

from threadstore import cursors
from threadstore.db.unit_of_work import Tx
from threadstore.errors import Conflict
from threadstore.events import outbox
from threadstore.ids import new_id
from threadstore.limits import Limits
from threadstore.messages import repository
from threadstore.messages.schemas import MessageCreate, message_json
from threadstore.threads import repository as threads_repo
from threadstore.threads.service import not_found


async def append(tx: Tx, user_id: str, thread_id: str, body: MessageCreate, limits: Limits) -> dict[str, Any]:
    content = limits.content(body.content, ("body", "content"))
    metadata = limits.metadata(body.metadata, ("body", "metadata"))
    row = {
        "id": new_id("msg"),
        "thread_id": thread_id,
        "seq": 0,  # handed out by the database below
        "role": body.role,
        "content": content,
        "metadata": metadata,
        "created_at": tx.now,
    }
    # One atomic UPDATE hands out the seq and bumps counter, version and updated_at; the row lock it takes
    # orders concurrent appends, so seqs are gapless and in commit order. In autocommit (PostgreSQL, no
    # Idempotency-Key) the insert and its event are in that same statement.
    if tx.autocommit:
        seq = await repository.append_in_place(tx, user_id, row, event_type=outbox.MESSAGE_CREATED)
    else:
        seq = await threads_repo.bump_for_append(tx, user_id, thread_id)
        if seq is not None:
            event = (user_id, outbox.MESSAGE_CREATED, message_json(row | {"seq": seq}))
            await repository.insert_message(tx, row | {"seq": seq}, event=event)
    if seq is None:
        status = await threads_repo.status_of(tx, user_id, thread_id)
        if status is None:
            raise not_found()
        raise Conflict("The thread is archived; restore it before adding messages.")
    return message_json(row | {"seq": seq})


async def list_messages(
    tx: Tx, user_id: str, thread_id: str, *, limit: int, cursor: str | None, order: Literal["asc", "desc"]
) -> dict[str, Any]:
    after = cursors.decode_seq_cursor(cursor) if cursor else None
    rows = await repository.page(tx, user_id, thread_id, after_seq=after, order=order, limit=limit + 1)
    if not rows and await threads_repo.status_of(tx, user_id, thread_id) is None:
        raise not_found()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursors.encode(rows[-1]["seq"]) if has_more else None
    return {"object": "list", "data": [message_json(r) for r in rows], "next_cursor": next_cursor, "has_more": has_more}
