"""The outbox: a write records its event with itself, so an event exists exactly when its change does.

`WithEvent` is the one way to record one: a write statement (INSERT, UPDATE or DELETE … RETURNING) and the
event of the row it returns. On PostgreSQL the two are one statement, which a unit of work can run without a
transaction; on SQLite, where a write cannot be a CTE, the event follows the write in the unit's transaction.
The event row is written once and never updated (its id is its delivery position: events/publisher.py), in
the compact form of db/event_body.py. The unit of work wakes event delivery after the commit
(`Tx.wrote_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    CTE,
    ColumnElement,
    Delete,
    Insert,
    LargeBinary,
    Select,
    Text,
    Update,
    bindparam,
    cast,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.engine import RowMapping

from threadstore.db import event_body
from threadstore.db.tables import events
from threadstore.db.unit_of_work import Tx

THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
THREAD_DELETED = "thread.deleted"
MESSAGE_CREATED = "message.created"


@dataclass(frozen=True)
class Event:
    """`data` is the object as the API returns it, about thread `thread_id`. `stored` names the one key of it
    whose value only the database knows (a seq it hands out, JSON as it normalized it): the write returns a
    column of that name, and the event takes the value from there. `content_of`: the id of the finished
    message whose content is `data["content"]`; the event then reads it from the message row."""

    user_id: str
    thread_id: str
    type: str
    data: dict[str, Any]
    stored: str | None = None
    content_of: str | None = None

    def body(self, at: datetime) -> bytes:
        """The stored body of the event recorded at time `at`."""
        omitted = {self.stored, "content" if self.content_of is not None else None}
        kept = {key: value for key, value in self.data.items() if key not in omitted}
        return event_body.encode(kept, self.thread_id, at)


class WithEvent:
    """A write and its event, built once per write statement. `also`: further writes (CTEs) of the same
    statement on PostgreSQL, such as the initial messages of a new thread."""

    def __init__(self, write: Insert | Update | Delete, stored: str | None = None, also: tuple[CTE, ...] = ()) -> None:
        self._write = write
        self._stored = stored
        written = write.cte("w")
        member: ColumnElement[Any] = null()
        if stored is not None:
            member = literal(orjson.dumps(stored).decode() + ":", Text()) + cast(written.c[stored], Text())
        recorded = insert(events).from_select(
            ["user_id", "thread_id", "type", "body", "member", "content_of", "created_at"],
            select(_E_USER, _E_THREAD, _E_TYPE, _E_BODY, member, _E_CONTENT_OF, _E_CREATED_AT).select_from(written),
        )
        self._one_statement: Select[Any] = select(written).add_cte(recorded.cte("e"), *also)

    async def execute(self, tx: Tx, params: dict[str, Any], event: Event) -> RowMapping | None:
        """Runs the write with `params`; if it returned a row, records `event` and returns the row."""
        if tx.dialect == "postgresql":
            row = (await tx.conn.execute(self._one_statement, params | _params(event, tx))).mappings().first()
        else:
            row = (await tx.conn.execute(self._write, params)).mappings().first()
            if row is not None:
                record = _params(event, tx)
                if self._stored is not None:
                    record["e_member"] = (
                        f"{orjson.dumps(self._stored).decode()}:{orjson.dumps(row[self._stored]).decode()}"
                    )
                await tx.conn.execute(_RECORD, record)
        if row is None:
            return None
        tx.wrote_events = True
        written: RowMapping = row
        return written


_E_USER = bindparam("e_user_id", type_=events.c.user_id.type)
_E_THREAD = bindparam("e_thread_id", type_=events.c.thread_id.type)
_E_TYPE = bindparam("e_type", type_=events.c.type.type)
_E_BODY = bindparam("e_body", type_=LargeBinary())
_E_CONTENT_OF = bindparam("e_content_of", type_=events.c.content_of.type)
_E_CREATED_AT = bindparam("e_created_at", type_=events.c.created_at.type)
_RECORD = insert(events).values(
    user_id=_E_USER,
    thread_id=_E_THREAD,
    type=_E_TYPE,
    body=_E_BODY,
    member=bindparam("e_member", type_=Text(), required=False, value=None),
    content_of=_E_CONTENT_OF,
    created_at=_E_CREATED_AT,
)


def _params(event: Event, tx: Tx) -> dict[str, Any]:
    return {
        "e_user_id": event.user_id,
        "e_thread_id": event.thread_id,
        "e_type": event.type,
        "e_body": event.body(tx.now),
        "e_content_of": event.content_of,
        "e_created_at": tx.now,
    }
