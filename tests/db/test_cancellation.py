"""Cancellation (client gone, timeout): the unit of work rolls back, the connection goes back to the pool,
no transaction is left open, and the write is wholly absent."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy import event, make_url, text

from tests.conftest import Api, Backend, idle_in_transaction
from threadstore.db.unit_of_work import Tx
from threadstore.threads import service
from threadstore.threads.schemas import ThreadCreate


async def test_unit_cancelled_after_its_writes_leaves_nothing(api: Api, user: str) -> None:
    wrote = asyncio.Event()

    async def create_then_hang(tx: Any) -> None:
        body = ThreadCreate(title="never", messages=[{"content": "hi"}])  # type: ignore[list-item]
        await service.create(tx, user, body, api.app.state.limits)
        wrote.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(api.database.write(create_then_hang))
    await wrote.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await _nothing_checked_out(api)
    listed = await api.request("GET", "/api/threads", user=user, params={"status": "all"})
    assert listed.json()["data"] == []


@pytest.mark.postgres_only
async def test_request_cancelled_while_waiting_for_a_lock_leaves_no_open_transaction(api: Api, user: str) -> None:
    thread = (await api.request("POST", "/api/threads", user=user, json={"title": "before"})).json()
    assert api.backend.dsn is not None
    foreign = await asyncpg.connect(api.backend.dsn)
    try:
        async with foreign.transaction():
            await foreign.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread["id"])
            # The client gives up while the PATCH waits on the row lock inside its transaction.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "after"}),
                    timeout=0.3,
                )
        # The foreign lock is gone; nothing of the cancelled PATCH may remain or arrive later.
        await asyncio.sleep(0.2)
        assert await idle_in_transaction(api.backend) == []
    finally:
        await foreign.close()
    current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert (current["title"], current["version"]) == ("before", 1)
    ok = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "later"})
    assert ok.status_code == 200 and ok.json()["version"] == 2


async def test_many_cancelled_appends_leave_gapless_seqs(api: Api, user: str) -> None:
    """Appends cancelled at arbitrary moments: each is wholly present or wholly absent, seqs stay 1..n."""
    thread = (await api.request("POST", "/api/threads", user=user, json={})).json()
    url = f"/api/threads/{thread['id']}/messages"

    async def append(i: int) -> None:
        await api.request("POST", url, user=user, json={"content": f"m{i}"})

    tasks = [asyncio.create_task(append(i)) for i in range(40)]
    for i, task in enumerate(tasks):
        await asyncio.sleep(0.001 * (i % 5))
        if i % 3 == 0:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    listed = (await api.request("GET", url, user=user, params={"limit": 100})).json()["data"]
    assert [m["seq"] for m in listed] == list(range(1, current["message_count"] + 1))
    assert current["version"] == current["message_count"] + 1


_CANCEL_HERE = "/* cancel here */"


async def test_unit_cancelled_inside_a_statement_leaves_the_database_unlocked(api: Api, user: str) -> None:
    """The cancellation lands in the await of an UPDATE ... RETURNING whose cursor still holds the statement
    (as the cancellation sweep does). A foreign writer then gets the write lock at once: on SQLite the discarded
    connection used to linger as a zombie holding BEGIN IMMEDIATE's lock until the cursor was collected."""
    thread = (await api.request("POST", "/api/threads", user=user, json={"title": "before"})).json()
    cancelling: list[asyncio.Task[None]] = []

    def cancel_at_marker(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Runs after the cursor exists and before the statement is sent: the cancellation is delivered in
        # the statement's own await, while the driver runs it.
        if _CANCEL_HERE in statement:
            cancelling[0].cancel()

    async def update(tx: Tx) -> None:
        sql = f"UPDATE threads SET title = 'cancelled' WHERE id = :id RETURNING id {_CANCEL_HERE}"
        await tx.conn.execute(text(sql), {"id": thread["id"]})

    engine = api.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", cancel_at_marker)
    try:
        cancelling.append(asyncio.create_task(api.database.write(update)))
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await cancelling[0]
    finally:
        event.remove(engine, "before_cursor_execute", cancel_at_marker)

    # `cancelled` keeps the interrupted cursor alive, as a cancellation still propagating would.
    await _write_as_foreign_session(api.backend, thread["id"])
    assert cancelled.value is not None
    await _nothing_checked_out(api)
    current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert (current["title"], current["version"]) == ("before", 1)


@pytest.mark.sqlite_only
async def test_a_read_cancelled_mid_begin_by_a_cancel_scope_closes_its_connection_once(api: Api) -> None:
    """An anyio cancel scope cancels its task again at every await until the task leaves it, as Starlette's
    streaming response does when an event stream's client disconnects during a catch-up read. The connection of
    the interrupted BEGIN is closed once: no "Future exception was never retrieved … Cannot operate on a closed
    database" (aiosqlite's close, cancelled again, used to stop its thread with the close still queued)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    scopes: list[anyio.CancelScope] = []

    def cancel_at_begin(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN" and scopes:
            scopes[-1].cancel()  # delivered in the BEGIN's own await, while the driver runs it

    async def one(tx: Tx) -> int:
        return int((await tx.conn.execute(text("SELECT 1"))).scalar_one())

    engine = api.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", cancel_at_begin)
    try:
        for _ in range(5):
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await api.database.read(one)
            assert scope.cancelled_caught
            scopes.clear()
    finally:
        event.remove(engine, "before_cursor_execute", cancel_at_begin)
    try:
        await asyncio.sleep(0.2)  # the discarded connections' threads finish their queues
        gc.collect()  # an unretrieved future reports itself when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [(c.get("message"), repr(c.get("exception"))) for c in reported] == []
    assert await api.database.read(one) == 1
    await _nothing_checked_out(api)


async def _write_as_foreign_session(backend: Backend, thread_id: str) -> None:
    """Takes the write lock (SQLite) or the row lock (PostgreSQL) outside the app, waiting at most 3 s: far
    less than busy_timeout, far more than the app's own background writers ever hold it."""
    if backend.is_postgres:
        assert backend.dsn is not None
        conn = await asyncpg.connect(backend.dsn)
        try:
            await conn.execute("SET lock_timeout = '3s'")
            await conn.execute("UPDATE threads SET title = title WHERE id = $1", thread_id)
        finally:
            await conn.close()
        return

    def begin_immediate() -> None:
        conn = sqlite3.connect(str(make_url(backend.url).database), timeout=3, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # "database is locked" if a zombie connection still holds it
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    await asyncio.to_thread(begin_immediate)  # off the loop: the app's background writers must go on


async def _nothing_checked_out(api: Api) -> None:
    """No connection checked out, allowing for event delivery's brief background checkouts."""
    pool: Any = api.database.engine.pool
    for _ in range(300):
        if pool.checkedout() == 0:
            return
        await asyncio.sleep(0.01)
    assert pool.checkedout() == 0
