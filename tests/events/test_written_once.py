"""An event is written once — by its write, never updated — and delivery still keeps every promise: a long
transaction elsewhere does not hold back other users' events, an id that never commits is passed, and a
permanent delete erases what the kept events held of the deleted thread."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select

from tests.conftest import new_user
from tests.harness.client import Api
from threadstore.db import event_body
from threadstore.db.tables import event_gaps, events

pytestmark = pytest.mark.through_pgbouncer

# Seconds to wait for a delivery that must not need the long transaction to end: the long transaction is held
# until after the wait, so any delivery proves the point; the bound only stops a broken run. Generous: on a
# busy 2-core machine 3 s was sometimes too little.
PATIENCE_BOUND = 15.0


async def test_no_statement_ever_updates_an_event_row(api: Api) -> None:
    """Whatever runs — writes, the publisher, streams, a resume — nothing but INSERT and DELETE touches events."""
    touched: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = " ".join(statement.split()).upper()
        if words.startswith("UPDATE EVENTS") or " UPDATE EVENTS " in words:
            touched.append(statement)

    event.listen(api.database.engine.sync_engine, "before_cursor_execute", record)
    try:
        user = new_user()
        async with api.stream(user) as stream:
            thread = await api.create_thread(user)
            for n in range(5):
                await api.append(user, thread["id"], f"m{n}")
            await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"metadata": {"a": "b"}})
            frames = await stream.events(7)
        async with api.stream(user, last_event_id=frames[0].id) as resumed:
            assert [f.id for f in await resumed.until_keep_alive()] == [f.id for f in frames[1:]]
    finally:
        event.remove(api.database.engine.sync_engine, "before_cursor_execute", record)
    assert touched == []


async def test_a_message_event_refers_to_the_content_instead_of_copying_it(api: Api) -> None:
    user = new_user()
    thread = await api.create_thread(user)
    text = "a finished message's content never changes " * 20
    message = await api.append(user, thread["id"], text)
    async with api.database.engine.connect() as conn:
        row = (await conn.execute(select(events).where(events.c.content_of == message["id"]))).one()
    assert text.encode() not in event_body.stored(row.body)  # the stored body holds no content
    assert len(row.body) < 200
    async with api.stream(user, last_event_id=0) as stream:
        frames = await stream.until_keep_alive()
    assert frames[-1].event == "message.created" and frames[-1].data == message


@pytest.mark.postgres_only
async def test_a_long_transaction_in_another_database_does_not_hold_back_delivery(api: Api) -> None:
    """A transaction that holds the server's xmin (here in another database) while an event id is rolled back:
    the publisher cannot tell that id's end from the snapshot, so after its patience it records a gap and
    moves on — and drops the gap once the long transaction is over."""
    assert api.backend.dsn is not None
    other = await asyncpg.connect(api.backend.dsn.rsplit("/", 1)[0] + "/postgres")
    ours = await asyncpg.connect(api.backend.dsn)
    user = new_user()
    try:
        await other.execute("BEGIN")
        await other.fetchval("SELECT pg_current_xact_id()")  # holds back every snapshot's xmin
        async with api.stream(user) as stream:
            rolled_back = ours.transaction()
            await rolled_back.start()
            await ours.execute(
                "INSERT INTO events (user_id, thread_id, type, body, created_at)"
                " VALUES ($1, 'x', 'thread.deleted', $2, now())",
                user,
                event_body.raw('{"id": "x"}'),
            )
            await rolled_back.rollback()  # an id taken and never committed, below the next event's
            created = await api.create_thread(user)
            frame = await stream.event(within=PATIENCE_BOUND)
            assert frame is not None and frame.data == created
        assert await _gap_count(api) == 1
        await other.execute("ROLLBACK")
        # With the long transaction over, a look drops the gap: its id can never commit now.
        deadline = time.monotonic() + PATIENCE_BOUND
        while await _gap_count(api) and time.monotonic() < deadline:
            await api.create_thread(new_user())
            await asyncio.sleep(0.1)
        assert await _gap_count(api) == 0
    finally:
        await other.close()
        await ours.close()


@pytest.mark.postgres_only
async def test_a_long_transaction_holding_an_event_does_not_hold_back_other_events(api: Api) -> None:
    """Like a large fork: its event id is taken early and commits late. Other users' events are delivered
    meanwhile; its own is delivered when it commits, after them, and a resume sees it exactly once."""
    assert api.backend.dsn is not None
    holder = await asyncpg.connect(api.backend.dsn)
    slow, others = new_user(), new_user()
    try:
        async with api.stream(slow) as slow_stream, api.stream(others) as other_stream:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute(
                "INSERT INTO events (user_id, thread_id, type, body, created_at)"
                " VALUES ($1, 'forked', 'thread.deleted', $2, now())",
                slow,
                event_body.raw('{"id": "forked"}'),
            )
            delivered = []
            for _ in range(5):
                created = await api.create_thread(others)
                frame = await other_stream.event(within=PATIENCE_BOUND)
                assert frame is not None and frame.data == created
                delivered.append(frame.id)
            await transaction.commit()
            late = await slow_stream.event(within=PATIENCE_BOUND)
            assert late is not None and late.data == {"id": "forked"}
            assert late.id > max(delivered)  # type: ignore[operator]
        async with api.stream(slow, last_event_id=0) as resumed:
            assert [f.id for f in await resumed.until_keep_alive()] == [late.id]
    finally:
        await holder.close()


async def test_a_permanent_delete_erases_the_threads_kept_events(api: Api) -> None:
    user = new_user()
    gone = await api.create_thread(user, title="secret plans")
    await api.append(user, gone["id"], "the secret itself")
    await api.request("PATCH", f"/api/threads/{gone['id']}", user=user, json={"metadata": {"k": "secret"}})
    kept = await api.create_thread(user, title="kept")
    deleted = await api.request("DELETE", f"/api/threads/{gone['id']}", user=user, params={"permanent": "true"})
    assert deleted.status_code == 204
    async with api.stream(user, last_event_id=0) as resumed:
        frames = await resumed.until_keep_alive()
    assert [(f.event, f.data) for f in frames] == [("thread.created", kept), ("thread.deleted", {"id": gone["id"]})]
    async with api.database.engine.connect() as conn:
        left = (
            await conn.execute(
                select(events.c.body, events.c.thread_id, events.c.created_at).where(events.c.thread_id == gone["id"])
            )
        ).all()
    assert [event_body.decode(row.body, thread_id=row.thread_id, at=row.created_at) for row in left] == [
        f'{{"id":"{gone["id"]}"}}'
    ]


async def _gap_count(api: Api) -> int:
    async with api.database.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(event_gaps))).scalar_one())
