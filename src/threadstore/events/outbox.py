"""The outbox: a write records its events in its own transaction, so an event exists iff its change does.

Recording wakes the publisher after COMMIT (events/publisher.py), which makes the event deliverable."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Row, Table, Text, Update, bindparam, cast, insert, select

from threadstore.db.tables import events
from threadstore.db.unit_of_work import Tx
from threadstore.events.publisher import wake_after_commit

THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
THREAD_DELETED = "thread.deleted"
MESSAGE_CREATED = "message.created"


_INSERT = insert(events)
_EVENT_COLUMNS = ("user_id", "type", "data", "created_at")


def _row(tx: Tx, user_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return _row_of_text(tx, user_id, event_type, orjson.dumps(data).decode())


def _row_of_text(tx: Tx, user_id: str, event_type: str, data: str) -> dict[str, Any]:
    return {"user_id": user_id, "type": event_type, "data": data, "created_at": tx.now}


async def record(tx: Tx, user_id: str, event_type: str, data: dict[str, Any]) -> None:
    await tx.conn.execute(_INSERT, _row(tx, user_id, event_type, data))
    wake_after_commit(tx)


class InsertWithEvent:
    """An INSERT and its event as one statement on PostgreSQL (`WITH w AS (INSERT …) INSERT INTO events …`):
    one round trip less on the hottest write. SQLite cannot put an INSERT in a WITH clause, and has no
    round trips to save, so there the two run one after the other. Built once per statement."""

    def __init__(self, table: Table) -> None:
        self._plain = insert(table)
        write = insert(table).values({c.name: bindparam(f"w_{c.name}", type_=c.type) for c in table.c}).cte("w")
        values = {name: bindparam(f"e_{name}", type_=events.c[name].type) for name in _EVENT_COLUMNS}
        self._combined = insert(events).values(values).add_cte(write)

    async def execute(self, tx: Tx, row: dict[str, Any], user_id: str, event_type: str, data: dict[str, Any]) -> None:
        event = _row(tx, user_id, event_type, data)
        if tx.dialect != "postgresql":
            await tx.conn.execute(self._plain, row)
            await tx.conn.execute(_INSERT, event)
        else:
            params = {f"w_{k}": v for k, v in row.items()} | {f"e_{k}": v for k, v in event.items()}
            await tx.conn.execute(self._combined, params)
        wake_after_commit(tx)


class UpdateWithEvent:
    """A conditional UPDATE and, only if it matched, its event, as one statement on PostgreSQL: in
    autocommit this is the whole write, one round trip. On SQLite the two run one after the other inside the
    unit's transaction. Built once per statement.

    `update` returns exactly one JSON column, and the event's data is that column's stored value spliced
    into the rest of the object (`splice`): JSONB normalizes what it stores (1e18 becomes 10^18, keys are
    reordered), and the event must carry the stored object, as the response does, not the request's."""

    def __init__(self, update: Update) -> None:
        self._plain = update
        write = update.cte("w")
        (stored,) = write.c
        data = bindparam("e_head", type_=Text()) + cast(stored, Text()) + bindparam("e_tail", type_=Text())
        columns = [bindparam("e_user_id", type_=events.c.user_id.type), bindparam("e_type", type_=events.c.type.type)]
        record = insert(events).from_select(
            list(_EVENT_COLUMNS),
            select(*columns, data, bindparam("e_created_at", type_=events.c.created_at.type)).select_from(write),
        )
        self._combined = select(stored).add_cte(record.cte("e"))

    async def execute(
        self, tx: Tx, params: dict[str, Any], user_id: str, event_type: str, around: tuple[str, str]
    ) -> Row[Any] | None:
        """Runs the update with `params`; if it matched a row, records the event and returns the row."""
        if tx.dialect != "postgresql":
            row = (await tx.conn.execute(self._plain, params)).first()
            if row is None:
                return None
            data = around[0] + orjson.dumps(row[0]).decode() + around[1]
            await tx.conn.execute(_INSERT, _row_of_text(tx, user_id, event_type, data))
        else:
            event = {"e_user_id": user_id, "e_type": event_type, "e_created_at": tx.now}
            combined = params | event | {"e_head": around[0], "e_tail": around[1]}
            row = (await tx.conn.execute(self._combined, combined)).first()
            if row is None:
                return None
        wake_after_commit(tx)
        return row


def insert_from_sql(source: str, data: str) -> str:
    """SQL recording one event per row of `source` (a CTE of the same statement), its data the SQL expression
    `data` over that row; binds :e_user_id, :e_type, :e_created_at. The caller wakes the publisher
    (`wake_after_commit`) when a row came back."""
    return (
        "INSERT INTO events (user_id, type, data, created_at)"
        f" SELECT :e_user_id, :e_type, {data}, :e_created_at FROM {source}"
    )


def event_params(tx: Tx, user_id: str, event_type: str) -> dict[str, Any]:
    return {"e_user_id": user_id, "e_type": event_type, "e_created_at": tx.now}


def splice(data: dict[str, Any], key: str) -> tuple[str, str]:
    """The JSON text of `data` before and after the value of `key`: head + value's JSON + tail is `data`."""
    keys = list(data)
    at = keys.index(key)
    head = orjson.dumps({k: data[k] for k in keys[:at]}).decode()[:-1]
    tail = orjson.dumps({k: data[k] for k in keys[at + 1 :]}).decode()[1:]
    return (head + ("," if at else "") + orjson.dumps(key).decode() + ":", ("," if tail != "}" else "") + tail)
