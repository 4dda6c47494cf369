"""One client's event stream as Server-Sent Events: catch up from the database, then follow the hub.

No connection is held while the stream waits: each catch-up page is its own short unit of work, and live
events arrive through the hub's in-memory queue. What a stream holds while its client is slow is bounded: a
catch-up page stops at `page_bytes` (events/pages.py), the queue at the hub's bounds, events stay compact until
each is made into its frame as it is sent, and a sent event is dropped from the page at once.

A stream ends cleanly (the client resumes with Last-Event-ID, losing nothing) at shutdown, when it fell too far
behind, when the database fails during its catch-up, when its token expires (`ends_at`, checked between
frames), and when its user opens one stream more than the cap: the oldest then gets a `retry:` field first,
so a client with more tabs than the cap waits that long before it reconnects instead of evicting another tab
at once.

A one-thread stream (`subscription.thread_id`) reads only that thread's events, and ends right after sending
its `thread.deleted`: nothing can follow it (ids are never reused), and ending frees the connection and the
slot under the user's cap, while a client that reconnects anyway gets 404, which stops a browser's EventSource.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncGenerator

from threadstore.db.outbox import THREAD_DELETED
from threadstore.db.unit_of_work import Database
from threadstore.errors import DomainError
from threadstore.events.hub import EVICTED, Hub, Subscription, SubscriptionClosed
from threadstore.events.pages import Pages
from threadstore.events.repository import PublishedEvent

log = logging.getLogger("threadstore.events")

KEEP_ALIVE = b": keep-alive\n\n"


def opened(after: int) -> bytes:
    """The first frame: sends the headers at once, so a client knows the stream is open, and names the position
    the stream starts after as its last event id. A browser's EventSource keeps it and sends it back as
    `Last-Event-ID` when it reconnects, so what was committed while it was away reaches it even if no event
    had arrived before the drop; without it the reconnect would start a new stream, from its own opening. An id
    with no data dispatches no event (the SSE parsing rules)."""
    return b": connected\nid: %d\n\n" % after


def frame(event: PublishedEvent) -> bytes:
    # The JSON text is one line, so one `data:` field.
    return b"".join((b"id: %d\nevent: %s\ndata: " % (event.position, event.type.encode()), event.json(), b"\n\n"))


def retry(milliseconds: int) -> bytes:
    return b"retry: %d\n\n" % milliseconds


async def event_frames(
    hub: Hub,
    database: Database,
    subscription: Subscription,
    after: int,
    *,
    keep_alive_seconds: float,
    page_bytes: int,
    evicted_retry_ms: int,
    ends_at: float | None,
) -> AsyncGenerator[bytes, None]:
    """Frames for events after position `after`, until `ends_at` (a Unix time; None: no end). The subscription
    must be registered before this reads."""

    thread_gone = False  # a one-thread stream sent its thread's deletion: the stream is over

    def ending() -> bool:
        return thread_gone or subscription.closed is not None or (ends_at is not None and time.time() >= ends_at)

    def last_of_thread(event: PublishedEvent) -> bool:
        return subscription.thread_id is not None and event.type == THREAD_DELETED

    last = after
    try:
        yield opened(after)
        pages = Pages(database, max_bytes=page_bytes, user_id=subscription.user_id, thread_id=subscription.thread_id)
        more = True
        while more and not ending():
            page = await pages.read(last, hub.through)
            pending, more = deque(page.events), page.more
            del page  # what is sent goes now, not with the page
            while pending and not ending():  # no local holds a sent event while the next page is read
                last = pending[0].position
                thread_gone = last_of_thread(pending[0])
                yield frame(pending.popleft())
            pending.clear()
        while not ending():
            wait = keep_alive_seconds if ends_at is None else min(keep_alive_seconds, ends_at - time.time())
            try:
                arrived = deque(await subscription.take(max(wait, 0.0)))
            except SubscriptionClosed:
                break
            if not arrived and not ending():
                yield KEEP_ALIVE
            while arrived and not ending():
                if arrived[0].position <= last:  # the catch-up sent it already
                    arrived.popleft()
                    continue
                last = arrived[0].position
                thread_gone = last_of_thread(arrived[0])
                yield frame(arrived.popleft())
        if subscription.closed == EVICTED:
            yield retry(evicted_retry_ms)
    except DomainError as error:
        # The database went away during a catch-up: end the stream; the client resumes from its last id.
        log.warning("event stream ended: %s", error.detail)
    finally:
        hub.unsubscribe(subscription)
