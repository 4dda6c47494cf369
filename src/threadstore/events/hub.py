"""The hub: one per process. It follows delivered events in position order and hands each to the open
streams of its user that follow it — all of the user's, or only its thread's (`GET /api/events?thread_id=`) —
through bounded queues. Another thread's event never enters a one-thread stream's queue: a client with a
stream per open conversation is not woken, nor its queue filled, by every delta of every thread.

A user has at most `max_per_user` open streams in a process: one more closes the user's oldest (`EVICTED`),
and that stream tells its client to wait before it reconnects (events/stream.py). Across processes streams
are not counted together.

Correctness of resuming rests on one rule: a stream registers here first and reads the database (its
catch-up) only afterwards, up to the hub's `through`. Events are delivered up to a horizon that only grows
(events/publisher.py) and nothing new ever appears below it, so every event is either within that catch-up
read or beyond it — and then fetched by the hub after the registration. Streams drop what they already sent
by position, so nothing is skipped or repeated.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from threadstore.db.unit_of_work import Database
from threadstore.errors import DomainError, ServiceUnavailable
from threadstore.events.pages import Pages
from threadstore.events.publisher import wait_for_signal
from threadstore.events.repository import PublishedEvent

log = logging.getLogger("threadstore.events")

# Why a subscription was closed.
SHUTDOWN = "shutdown"
OVERFLOW = "overflow"  # its stream fell too far behind
EVICTED = "evicted"  # its user opened one stream more than the cap


class SubscriptionClosed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscription:
    """One open stream's inbox. Bounded (by the hub): a consumer too slow to keep up is closed (it resumes from
    its Last-Event-ID) instead of making the process hold an ever longer backlog."""

    def __init__(self, user_id: str, thread_id: str | None = None) -> None:
        self.user_id = user_id
        self.thread_id = thread_id  # None: every event of the user
        self._items: deque[PublishedEvent] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self.closed: str | None = None

    @property
    def behind(self) -> int:
        """Events received and not yet taken by the stream."""
        return len(self._items)

    @property
    def behind_bytes(self) -> int:
        """Their size."""
        return self._bytes

    def follows(self, event: PublishedEvent) -> bool:
        """Whether the event belongs on this stream (it is its user's)."""
        return self.thread_id is None or self.thread_id == event.thread_id

    def offer(self, event: PublishedEvent) -> None:
        self._items.append(event)
        self._bytes += event.size
        self._ready.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._items.clear()
            self._bytes = 0
            self._ready.set()

    async def take(self, wait_seconds: float) -> list[PublishedEvent]:
        """What arrived, or [] after `wait_seconds` without anything; raises once closed."""
        if not self._items and self.closed is None and not await wait_for_signal(self._ready, wait_seconds):
            return []
        if self.closed is not None:
            raise SubscriptionClosed(self.closed)
        taken = list(self._items)
        self._items.clear()
        self._bytes = 0
        self._ready.clear()
        return taken


class Hub:
    def __init__(
        self,
        database: Database,
        current: Callable[[], Awaitable[int]],
        *,
        capacity: int,
        capacity_bytes: int,
        page_bytes: int,
        max_per_user: int,
        poll_interval: float,
    ) -> None:
        """`current`: how far events are delivered now (the publisher's `through`, looking first if needed).
        `capacity`, `capacity_bytes`: how far behind a stream may fall before it is closed."""
        self._current = current
        self._capacity = capacity
        self._capacity_bytes = capacity_bytes
        self._max_per_user = max_per_user
        self._poll_interval = poll_interval
        self._pages = Pages(database, max_bytes=page_bytes)
        # Per user, oldest first (a dict keeps insertion order): the oldest is the one a newcomer evicts.
        self._subscriptions: dict[str, dict[Subscription, None]] = {}
        self._through = 0  # events are delivered up to this position
        self._cursor: int | None = None  # the last position fanned out (or known to be delivered)
        self._lock = asyncio.Lock()  # registration never interleaves with a fan-out or a cursor jump
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def subscriptions(self) -> int:
        return sum(len(subs) for subs in self._subscriptions.values())

    @property
    def through(self) -> int:
        """Events are delivered up to this position: a catch-up reads up to here, the hub beyond."""
        return self._through

    def published(self, through: int) -> None:
        """Events up to `through` are delivered (the local publisher, or NOTIFY from another instance)."""
        if through <= self._through:
            return
        self._through = through
        if not self._subscriptions:
            # Nobody to deliver to: move on without reading. A later registration reads after this,
            # so it sees these events itself.
            self._cursor = max(self._cursor or 0, through)
        self._wake.set()

    async def subscribe(self, user_id: str, thread_id: str | None = None) -> Subscription:
        """A stream of the user's events, or of its thread `thread_id`'s only (the caller checked it is the
        user's). Either kind counts towards the user's cap."""
        if self._closed:
            raise ServiceUnavailable("The server is shutting down.")
        async with self._lock:
            if not self._subscriptions or self._cursor is None:
                # The cursor is not followed while nobody listens; skip what nobody needed.
                self.published(await self._current())
                self._cursor = max(self._cursor or 0, self._through)
            if self._closed:
                raise ServiceUnavailable("The server is shutting down.")
            subs = self._subscriptions.setdefault(user_id, {})
            while len(subs) >= self._max_per_user:
                oldest = next(iter(subs))
                log.info("closing the oldest of a user's %d event streams for a new one", len(subs))
                oldest.close(EVICTED)
                del subs[oldest]
            subscription = Subscription(user_id, thread_id)
            subs[subscription] = None
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscriptions.get(subscription.user_id)
        if subs is not None:
            subs.pop(subscription, None)
            if not subs:
                del self._subscriptions[subscription.user_id]

    def close(self) -> None:
        """Ends every stream (shutdown); new subscriptions are refused."""
        self._closed = True
        for subs in list(self._subscriptions.values()):
            for subscription in subs:
                subscription.close(SHUTDOWN)
        self._subscriptions.clear()
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._closed:
            # The timeout is the poll: delivery within an interval even if a NOTIFY was lost.
            await wait_for_signal(self._wake, self._poll_interval)
            self._wake.clear()
            if not self._subscriptions:
                continue
            try:
                async with self._lock:
                    await self._fan_out()
            except DomainError as error:  # database busy or down: streams wait, the next poll retries
                log.warning("reading published events failed: %s", error.detail)
                await asyncio.sleep(self._poll_interval)
            except Exception:
                log.exception("reading published events failed")
                await asyncio.sleep(self._poll_interval)

    async def _fan_out(self) -> None:
        while self._subscriptions and self._cursor is not None and self._cursor < self._through:
            through = self._through
            page = await self._pages.read(self._cursor, through)
            self._deliver(page.events)
            # A page that is not cut ends the range (what is missing from it was erased or pruned).
            self._cursor = page.events[-1].position if page.more else through

    def _deliver(self, page: list[PublishedEvent]) -> None:
        # A stream still `capacity` events or `capacity_bytes` behind when the next page arrives is closed.
        # Judged per page, not per event, so a burst reaches a stream that keeps up; a stream holds at most
        # a page (pages.MAX_EVENTS events, about page_bytes) beyond either bound. Only a stream the page has
        # something for is judged: a one-thread stream is not closed for other threads' events.
        threads = {(event.user_id, event.thread_id) for event in page}
        for user_id in {user_id for user_id, _ in threads}:
            for subscription in list(self._subscriptions.get(user_id, ())):
                if subscription.thread_id is not None and (user_id, subscription.thread_id) not in threads:
                    continue
                if subscription.behind >= self._capacity or subscription.behind_bytes >= self._capacity_bytes:
                    log.info(
                        "closing an event stream that fell %d events (%d bytes) behind",
                        subscription.behind,
                        subscription.behind_bytes,
                    )
                    subscription.close(OVERFLOW)
                    self.unsubscribe(subscription)
        for event in page:
            for subscription in self._subscriptions.get(event.user_id, ()):
                if subscription.follows(event):
                    subscription.offer(event)
