"""Outbox event ids are never reused, even after every row is pruned (SQLite's rowid would restart)."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from tests.conftest import Api
from threadstore.db.tables import events


async def _max_event_id(api: Api) -> int:
    async with api.database.engine.connect() as conn:
        return int((await conn.execute(select(func.max(events.c.id)))).scalar_one())


async def test_event_ids_grow_after_the_table_was_emptied(api: Api, user: str) -> None:
    await api.request("POST", "/api/threads", user=user, json={})
    before = await _max_event_id(api)
    async with api.database.engine.begin() as conn:
        await conn.execute(delete(events))
    await api.request("POST", "/api/threads", user=user, json={})
    assert await _max_event_id(api) > before
