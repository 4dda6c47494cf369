"""The outbox: a write records its event with itself, so an event exists exactly when its change does.

`WithEvent` is the one way to record one: a write statement (INSERT, UPDATE or DELETE … RETURNING) and the
event of the row it returns. On PostgreSQL the two are one statement, which a unit of work can run without a
transaction; on SQLite, where a write cannot be a CTE, the event follows the write in the unit's transaction.
The unit of work wakes event delivery after the commit (`Tx.wrote_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import CTE, ColumnElement, Delete, Insert, Select, Text, Update, bindparam, cast, insert, select
from sqlalchemy.engine import RowMapping

from threadstore.db.tables import events
from threadstore.db.unit_of_work import Tx

THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
THREAD_DELETED = "thread.deleted"
MESSAGE_CREATED = "message.created"


@dataclass(frozen=True)
class Event:
    """`data` is the object as the API returns it. `stored` names the one key of it whose value only the
    database knows (a seq it hands out, JSON as it normalized it): the write returns a column of that name,
    and the event takes the value from there."""

    user_id: str
    type: str
    data: dict[str, Any]
    stored: str | None = None


class WithEvent:
    """A write and its event, built once per write statement. `also`: further writes (CTEs) of the same
    statement on PostgreSQL, such as the initial messages of a new thread."""

    def __init__(self, write: Insert | Update | Delete, stored: str | None = None, also: tuple[CTE, ...] = ()) -> None:
        self._write = write
        self._stored = stored
        written = write.cte("w")
        data: ColumnElement[str] = bindparam("e_data", type_=Text())
        if stored is not None:
            value = cast(written.c[stored], Text())
            data = bindparam("e_head", type_=Text()) + value + bindparam("e_tail", type_=Text())
        recorded = insert(events).from_select(
            ["user_id", "type", "data", "created_at"],
            select(_E_USER, _E_TYPE, data, _E_CREATED_AT).select_from(written),
        )
        self._one_statement: Select[Any] = select(written).add_cte(recorded.cte("e"), *also)

    async def execute(self, tx: Tx, params: dict[str, Any], event: Event) -> RowMapping | None:
        """Runs the write with `params`; if it returned a row, records `event` and returns the row."""
        if tx.dialect == "postgresql":
            row = (await tx.conn.execute(self._one_statement, params | _params(event, tx))).mappings().first()
        else:
            row = (await tx.conn.execute(self._write, params)).mappings().first()
            if row is not None:
                stored = {} if self._stored is None else {self._stored: row[self._stored]}
                data = orjson.dumps(event.data | stored).decode()
                await tx.conn.execute(
                    _RECORD, {"user_id": event.user_id, "type": event.type, "data": data, "created_at": tx.now}
                )
        if row is None:
            return None
        tx.wrote_events = True
        written: RowMapping = row
        return written


_E_USER = bindparam("e_user_id", type_=events.c.user_id.type)
_E_TYPE = bindparam("e_type", type_=events.c.type.type)
_E_CREATED_AT = bindparam("e_created_at", type_=events.c.created_at.type)
_RECORD = insert(events)


def _params(event: Event, tx: Tx) -> dict[str, Any]:
    params: dict[str, Any] = {"e_user_id": event.user_id, "e_type": event.type, "e_created_at": tx.now}
    if event.stored is None:
        params["e_data"] = orjson.dumps(event.data).decode()
    else:
        params["e_head"], params["e_tail"] = _around(event.data, event.stored)
    return params


def _around(data: dict[str, Any], key: str) -> tuple[str, str]:
    """The JSON text of `data` before and after the value of `key`: head + value's JSON + tail is `data`."""
    keys = list(data)
    at = keys.index(key)
    head = orjson.dumps({k: data[k] for k in keys[:at]}).decode()[:-1]
    tail = orjson.dumps({k: data[k] for k in keys[at + 1 :]}).decode()[1:]
    return (head + ("," if at else "") + orjson.dumps(key).decode() + ":", ("," if tail != "}" else "") + tail)
