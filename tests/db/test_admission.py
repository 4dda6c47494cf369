"""Units of work get pooled connections first come, first served, on the real pools of both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from tests.conftest import Backend, make_settings, new_user, running_api
from threadstore.db.unit_of_work import Tx


async def test_a_unit_arriving_as_a_connection_is_returned_does_not_overtake_the_waiters(
    backend: Backend, tmp_path: Path
) -> None:
    """One pooled connection, held while A, B and C line up for it. D asks the moment the holder returns it,
    before the woken A has run: SQLAlchemy's pool queue alone would hand it to D and send A to the back."""
    settings = make_settings(backend, tmp_path, pool_size=1, pool_max_overflow=0, pool_timeout=5.0)
    async with running_api(backend, settings) as api:
        database = api.database
        order: list[str] = []
        holding, release = asyncio.Event(), asyncio.Event()

        async def unit(name: str) -> None:
            async def work(tx: Tx) -> None:
                order.append(name)
                await tx.conn.execute(text("SELECT 1"))
                if name == "holder":
                    holding.set()
                    await release.wait()

            await database.read(work)

        late: list[asyncio.Task[None]] = []

        def ask_as_it_is_returned(*_: Any) -> None:
            if not late:  # the holder's check-in: runs before the pool wakes its oldest waiter
                late.append(asyncio.get_running_loop().create_task(unit("D")))

        holder = asyncio.create_task(unit("holder"))
        await asyncio.wait_for(holding.wait(), 10)
        waiters = []
        for name in "ABC":
            waiters.append(asyncio.create_task(unit(name)))
            await asyncio.sleep(0.01)  # each one waiting before the next asks
        event.listen(database.engine.sync_engine.pool, "checkin", ask_as_it_is_returned)
        try:
            release.set()
            await asyncio.wait_for(asyncio.gather(holder, *waiters), 10)
            await asyncio.wait_for(asyncio.gather(*late), 10)
        finally:
            event.remove(database.engine.sync_engine.pool, "checkin", ask_as_it_is_returned)
        assert order == ["holder", "A", "B", "C", "D"]
        assert (await api.request("GET", "/api/threads", user=new_user())).status_code == 200


async def test_units_cancelled_waiting_or_holding_give_their_turn_back(backend: Backend, tmp_path: Path) -> None:
    """A client that goes away while its unit waits for the only connection, or while it holds it, leaves the
    line as it found it: the next request is served at once instead of timing out at capacity."""
    settings = make_settings(backend, tmp_path, pool_size=1, pool_max_overflow=0, pool_timeout=2.0)
    async with running_api(backend, settings) as api:
        database = api.database
        holding = asyncio.Event()

        async def hold(tx: Tx) -> None:
            await tx.conn.execute(text("SELECT 1"))
            holding.set()
            await asyncio.Event().wait()

        async def select_one(tx: Tx) -> int:
            return int((await tx.conn.execute(text("SELECT 1"))).scalar_one())

        holder = asyncio.create_task(database.read(hold))
        await asyncio.wait_for(holding.wait(), 10)
        waiters = [asyncio.create_task(database.read(select_one)) for _ in range(3)]
        await asyncio.sleep(0.05)
        for task in [waiters[1], holder, waiters[0]]:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert await asyncio.wait_for(waiters[2], 1.0) == 1
        started = asyncio.get_running_loop().time()
        for _ in range(3):
            assert await database.read(select_one) == 1
        assert asyncio.get_running_loop().time() - started < 1.0
        assert (await api.request("GET", "/api/threads", user=new_user())).status_code == 200
