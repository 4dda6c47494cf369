"""The publisher: hands out delivery positions to committed events, one batch per short unit of work.

It runs in every instance. A write that recorded an event wakes it after its commit (an in-memory signal,
never a database round trip in the request); a periodic sweep also publishes events whose instance died
between its commit and its publisher's run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from threadstore.db.unit_of_work import Database
from threadstore.errors import DomainError
from threadstore.events import repository

log = logging.getLogger("threadstore.events")

BATCH = 1000


class Publisher:
    def __init__(
        self, database: Database, on_published: Callable[[int], None], *, sweep_interval: float, batch: int = BATCH
    ) -> None:
        self._database = database
        self._on_published = on_published
        self._sweep_interval = sweep_interval
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopped = False
        # The unit of work calls this after each commit that recorded events.
        database.on_events_committed = self.wake

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._database.on_events_committed = None

    async def publish_all(self) -> int:
        """Publishes until nothing committed is left unpublished. Returns how many events it published."""
        total = 0
        while True:
            count, top = await self._database.write(lambda tx: repository.publish(tx, self._batch))
            total += count
            if top is not None:
                self._on_published(top)
            if count < self._batch:
                return total

    async def run_forever(self) -> None:
        while not self._stopped:
            woken = await wait_for_signal(self._wake, self._sweep_interval)
            self._wake.clear()
            try:
                # A sweep first asks cheaply (a read) whether anything was left behind.
                if woken or await self._database.read(repository.has_unpublished):
                    await self.publish_all()
            except DomainError as error:  # database busy or down: the next sweep tries again
                log.warning("publishing events failed: %s", error.detail)
                await asyncio.sleep(self._sweep_interval)
            except Exception:  # a bug must not stop delivery for the life of the process
                log.exception("publishing events failed")
                await asyncio.sleep(self._sweep_interval)


async def wait_for_signal(signal: asyncio.Event, seconds: float) -> bool:
    """Whether `signal` was set within `seconds`. Not `asyncio.wait_for`: before Python 3.12 it can swallow
    a cancellation that arrives as the event is set, and a task stopped at shutdown would then run on."""
    try:
        async with asyncio.timeout(seconds):
            await signal.wait()
    except TimeoutError:
        return False
    return True
