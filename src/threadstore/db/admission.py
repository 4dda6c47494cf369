"""Units of work get their pooled connection in the order they asked for one.

SQLAlchemy's async pool waits on an `asyncio.Queue`. A returned connection wakes the oldest waiter, but the
waiter only runs on a later turn of the event loop, and a unit that arrives in between finds the connection
free and takes it. The woken waiter then queues again at the back. Under load most units barge in and are
served at once while a few lose the race again and again: a short median and a long p99 (docs/performance.md).

`asyncio.Semaphore` hands a released slot straight to its oldest waiter and makes newcomers queue behind
the waiters. Gating every checkout with one that has as many slots as the pool has connections makes the
wait first come, first served, and the pool itself never has to wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from threadstore import metrics


class NoTurn(Exception):
    """No connection came free within the pool timeout."""


class Admission:
    def __init__(self, slots: int | None, timeout: float) -> None:
        """`slots=None`: the pool has no bound (NullPool, StaticPool), so there is no line to keep."""
        self._slots = asyncio.Semaphore(slots) if slots is not None else None
        self._timeout = timeout

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> Admission:
        """As many slots as the engine's pool holds connections, waiting as long as the pool would."""
        pool = engine.pool
        if isinstance(pool, QueuePool):
            # `_max_overflow` has no public accessor; the overflow connections are slots too.
            return cls(pool.size() + max(pool._max_overflow, 0), pool.timeout())
        return cls(None, 0.0)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the pool's connections' slots for the block; raises `NoTurn` after the timeout."""
        slots = self._slots
        if slots is None:
            yield
            return
        if slots.locked():
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self._timeout):
                    await slots.acquire()
            except TimeoutError:
                raise NoTurn() from None
            metrics.POOL_WAITS.observe(time.perf_counter() - started)
        else:
            await slots.acquire()  # a free slot and nobody waiting: returns without suspending
        try:
            yield
        finally:
            slots.release()
