"""Event delivery of one process: the publisher, the hub, and on PostgreSQL the LISTEN connection.
Started and stopped by the application's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from threadstore import metrics
from threadstore.config import Settings
from threadstore.db.unit_of_work import Database
from threadstore.errors import DomainError
from threadstore.events import listener, shutdown
from threadstore.events.hub import Hub
from threadstore.events.publisher import Publisher

log = logging.getLogger("threadstore.events")

STOP_SECONDS = 5.0


class EventDelivery:
    def __init__(self, database: Database, settings: Settings) -> None:
        self._database = database
        self._settings = settings
        self.publisher = Publisher(database, self._published, sweep_interval=settings.event_poll_interval_seconds)
        self.hub = Hub(
            database,
            self.publisher.current,
            capacity=settings.event_stream_queue_size,
            capacity_bytes=settings.event_stream_queue_bytes,
            page_bytes=settings.event_page_bytes,
            max_per_user=settings.max_streams_per_user,
            poll_interval=settings.event_poll_interval_seconds,
        )
        metrics.watch_event_streams(lambda: self.hub.subscriptions)
        self._tasks: list[asyncio.Task[None]] = []
        self._restore_signals: Callable[[], None] = lambda: None

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.hub.run_forever(), name="event-hub"),
            asyncio.create_task(self.publisher.run_forever(), name="event-publisher"),
        ]
        if self._database.dialect == "postgresql":
            args = listener.connect_arguments(
                self._database.engine,
                self._settings.resolved_direct_database_url,
                self._settings.application_name,
                self._settings.connect_timeout,
            )
            self._tasks.append(asyncio.create_task(listener.listen_forever(args, self._heard), name="event-listener"))
        self._restore_signals = shutdown.on_exit_signal(self.hub.close)

    def _published(self, through: int) -> None:
        self.hub.published(through)

    def _heard(self, through: int) -> None:
        """Another instance delivered up to `through` (NOTIFY)."""
        self.publisher.heard(through)
        self.hub.published(through)

    async def stop(self) -> None:
        self._restore_signals()
        self.hub.close()
        try:  # where delivery got, so the next start looks from there
            async with asyncio.timeout(STOP_SECONDS):
                await self.publisher.publish_all(record=True)
        except (DomainError, TimeoutError) as error:
            log.warning("could not record how far events were delivered: %s", type(error).__name__)
        self.publisher.stop()
        for task in self._tasks:
            task.cancel()
        # Bounded: shutdown must finish even if a task does not honour its cancellation.
        _, pending = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
        if pending:
            log.error("event delivery tasks did not stop: %s", ", ".join(t.get_name() for t in pending))
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("event delivery task %s failed", task.get_name(), exc_info=task.exception())
