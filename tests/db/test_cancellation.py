"""Cancellation (client gone, timeout): the unit of work rolls back, the connection goes back to the pool,
no transaction is left open, and the write is wholly absent."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from tests.conftest import Api, idle_in_transaction
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

    assert api.database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
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
