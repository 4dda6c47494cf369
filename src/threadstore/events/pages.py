"""Reading delivered events in pages bounded by count and by bytes, for one reader (a stream's catch-up, of
its user or of one thread of its user, or the hub's fan-out).

A page stops at `max_bytes` (events/repository.py `delivered`): what a reader holds while its client is slow
is one page, however large the events. Deciding where a page stops means sizing a window of rows first, and on
SQLite a row's size is read from its content; so the window is sized from the events last read: about twice
as many rows as `max_bytes` holds at their average size (at most `max_events`). Large events then cost about
two pages' reading per page rather than `max_events` rows, and small ones still come `max_events` at a time.
"""

from __future__ import annotations

from functools import partial

from threadstore.db.unit_of_work import Database
from threadstore.events import repository
from threadstore.events.repository import DeliveredPage

MAX_EVENTS = 500


class Pages:
    def __init__(
        self,
        database: Database,
        *,
        max_bytes: int,
        user_id: str | None = None,
        thread_id: str | None = None,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self._database = database
        self._max_bytes = max_bytes
        self._user_id = user_id
        self._thread_id = thread_id
        self._max_events = max_events
        self._window = max_events

    async def read(self, after: int, through: int) -> DeliveredPage:
        """The delivered events in (after, through], from the first: a page, and whether more follow it."""
        page = await self._database.read(
            partial(
                repository.delivered,
                after=after,
                through=through,
                limit=self._window,
                max_bytes=self._max_bytes,
                user_id=self._user_id,
                thread_id=self._thread_id,
            )
        )
        if page.events:
            average = max(1, sum(event.size for event in page.events) // len(page.events))
            self._window = max(1, min(self._max_events, 2 * self._max_bytes // average))
        return page
