"""The outbox: a write records its event with itself, so an event exists exactly when its change does.

`WithEvent` is the one way to record one: a write statement (INSERT, UPDATE or DELETE … RETURNING) and the
event of the row it returns. On PostgreSQL the two are one statement, which a unit of work can run without a
transaction; on SQLite, where a write cannot be a CTE, the event follows the write in the unit's transaction.
The event row is written once and never updated (its id is its delivery position: events/publisher.py), in
the compact form of db/event_body.py. The unit of work wakes event delivery after the commit
(`Tx.wrote_events`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Delete,
    Insert,
    LargeBinary,
    Select,
    String,
    Text,
    Update,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    text,
)
from sqlalchemy.engine import RowMapping

from threadstore.db import event_body
from threadstore.db.tables import events
from threadstore.db.unit_of_work import Tx

THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
THREAD_DELETED = "thread.deleted"
MESSAGE_CREATED = "message.created"
MESSAGE_DELETED = "message.deleted"
MESSAGE_DELTA = "message.delta"
MESSAGE_UPDATED = "message.updated"


@dataclass(frozen=True)
class Event:
    """`data` is the object as the API returns it, about thread `thread_id`. `stored` names the keys of it
    whose values only the database knows (a seq it hands out, a parent it chose, JSON as it normalized it): the
    write returns columns of those names, and the event takes the values from there. `content_of`: the id of
    the finished message whose content is `data["content"]`; the event then reads it from the message row.
    `message_id`: the message whose text `data` holds itself (a delta, an unfinished message): the event is
    erased with that message."""

    user_id: str
    thread_id: str
    type: str
    data: dict[str, Any]
    stored: str | tuple[str, ...] | None = None
    content_of: str | None = None
    message_id: str | None = None

    def body(self, at: datetime) -> bytes:
        """The stored body of the event recorded at time `at`."""
        omitted = {*_keys(self.stored), "content" if self.content_of is not None else None}
        kept = {key: value for key, value in self.data.items() if key not in omitted}
        return event_body.encode(kept, self.thread_id, at)


def _keys(stored: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if stored is None else (stored,) if isinstance(stored, str) else stored


def _member_python(stored: tuple[str, ...], row: RowMapping) -> str:
    """The stored keys' `"key":value` members as JSON text, from the written row."""
    return ",".join(f"{orjson.dumps(key).decode()}:{orjson.dumps(row[key]).decode()}" for key in stored)


class WithEvent:
    """A write and its event, built once per write statement. `also`: further writes (CTEs) of the same
    statement on PostgreSQL, made from the write's CTE (such as a new thread's trunk and initial messages)."""

    def __init__(
        self,
        write: Insert | Update | Delete,
        stored: str | tuple[str, ...] | None = None,
        also: Callable[[CTE], tuple[CTE, ...]] | None = None,
    ) -> None:
        self._write = write
        self._stored = _keys(stored)
        written = write.cte("w")
        member: ColumnElement[Any] = null()
        for i, key in enumerate(self._stored):
            column = written.c[key]
            # JSON text of the value: a string needs quoting; a number or a JSON document prints as JSON.
            value = func.to_json(column) if isinstance(column.type, String) else column
            as_json = func.coalesce(cast(value, Text()), literal("null", Text()))
            part = literal(("," if i else "") + orjson.dumps(key).decode() + ":", Text()) + as_json
            member = part if i == 0 else member + part
        recorded = insert(events).from_select(
            ["user_id", "thread_id", "type", "body", "member", "content_of", "message_id", "created_at"],
            select(_E_USER, _E_THREAD, _E_TYPE, _E_BODY, member, _E_CONTENT_OF, _E_MESSAGE, _E_CREATED_AT).select_from(
                written
            ),
        )
        further = also(written) if also is not None else ()
        self._one_statement: Select[Any] = select(written).add_cte(recorded.cte("e"), *further)

    async def execute(self, tx: Tx, params: dict[str, Any], event: Event) -> RowMapping | None:
        """Runs the write with `params`; if it returned a row, records `event` and returns the row."""
        if tx.dialect == "postgresql":
            row = (await tx.conn.execute(self._one_statement, params | _params(event, tx))).mappings().first()
        else:
            row = (await tx.conn.execute(self._write, params)).mappings().first()
            if row is not None:
                await record(tx, event, row, self._stored)
        if row is None:
            return None
        tx.wrote_events = True
        written: RowMapping = row
        return written


async def record(tx: Tx, event: Event, row: RowMapping | None = None, stored: tuple[str, ...] = ()) -> None:
    """Records `event` by itself, in the unit's transaction (a write of several statements: SQLite, or a
    transaction on PostgreSQL), taking the `stored` keys' values from the written `row`."""
    params = _params(event, tx)
    if stored and row is not None:
        params["e_member"] = _member_python(stored, row)
    await tx.conn.execute(_RECORD, params)
    tx.wrote_events = True


class TextWithEvent:
    """A PostgreSQL write too involved for an expression (a tree's statements), as SQL text and its event in one
    statement: `sql` is a `WITH` list whose last entry is `w`, the write with RETURNING; the event is recorded
    from `w`'s row, with the `stored` keys' values as the database printed them (JSON text)."""

    def __init__(self, sql: str, stored: tuple[str, ...], binds: tuple[BindParameter[Any], ...] = ()) -> None:
        self._stored = stored
        member = " || ',' || ".join(f"'\"{key}\":' || coalesce(to_json(w.{key})::text, 'null')" for key in stored)
        self._statement = text(
            f"{sql},\ne AS (INSERT INTO events (user_id, thread_id, type, body, member, content_of, message_id,"
            f" created_at) SELECT :e_user_id, :e_thread_id, :e_type, :e_body, {member or 'NULL'}, :e_content_of,"
            " :e_message_id, :e_created_at"
            " FROM w)\nSELECT * FROM w"
        ).bindparams(_E_BODY, _E_CREATED_AT, *binds)

    async def execute(self, tx: Tx, params: dict[str, Any], event: Event) -> RowMapping | None:
        row = (await tx.conn.execute(self._statement, params | _params(event, tx))).mappings().first()
        if row is not None:
            tx.wrote_events = True
        return row


_E_USER = bindparam("e_user_id", type_=events.c.user_id.type)
_E_THREAD = bindparam("e_thread_id", type_=events.c.thread_id.type)
_E_TYPE = bindparam("e_type", type_=events.c.type.type)
_E_BODY = bindparam("e_body", type_=LargeBinary())
_E_CONTENT_OF = bindparam("e_content_of", type_=events.c.content_of.type)
_E_MESSAGE = bindparam("e_message_id", type_=events.c.message_id.type)
_E_CREATED_AT = bindparam("e_created_at", type_=events.c.created_at.type)
_RECORD = insert(events).values(
    user_id=_E_USER,
    thread_id=_E_THREAD,
    type=_E_TYPE,
    body=_E_BODY,
    member=bindparam("e_member", type_=Text(), required=False, value=None),
    content_of=_E_CONTENT_OF,
    message_id=_E_MESSAGE,
    created_at=_E_CREATED_AT,
)


def _params(event: Event, tx: Tx) -> dict[str, Any]:
    return {
        "e_user_id": event.user_id,
        "e_thread_id": event.thread_id,
        "e_type": event.type,
        "e_body": event.body(tx.now),
        "e_content_of": event.content_of,
        "e_message_id": event.message_id,
        "e_created_at": tx.now,
    }
