"""The outbox: a write records its events in its own transaction, so an event exists iff its change does."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import insert

from threadstore.db.tables import events
from threadstore.db.unit_of_work import Tx

THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
THREAD_DELETED = "thread.deleted"
MESSAGE_CREATED = "message.created"


_INSERT = insert(events)


async def record(tx: Tx, user_id: str, event_type: str, data: dict[str, Any]) -> None:
    row = {"user_id": user_id, "type": event_type, "data": orjson.dumps(data).decode(), "created_at": tx.now}
    await tx.conn.execute(_INSERT, row)
