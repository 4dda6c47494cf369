"""One client's event stream as Server-Sent Events: catch up from the database, then follow the hub.

No connection is held while the stream waits: each catch-up page is its own short unit of work, and live
events arrive through the hub's in-memory queue.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

from threadstore.db.unit_of_work import Database
from threadstore.errors import DomainError
from threadstore.events import repository
from threadstore.events.hub import Hub, Subscription, SubscriptionClosed
from threadstore.events.repository import PublishedEvent

log = logging.getLogger("threadstore.events")

CATCH_UP_PAGE = 500
KEEP_ALIVE = b": keep-alive\n\n"
OPENED = b": connected\n\n"  # sends the headers at once, so a client knows the stream is open


def frame(event: PublishedEvent) -> bytes:
    # `data` is the recorded JSON text: one line, so one `data:` field.
    return f"id: {event.position}\nevent: {event.type}\ndata: {event.data}\n\n".encode()


async def event_frames(
    hub: Hub, database: Database, subscription: Subscription, after: int, keep_alive_seconds: float
) -> AsyncIterator[bytes]:
    """Frames for events after position `after`. The subscription must be registered before this reads."""
    user_id = subscription.user_id
    last = after
    try:
        yield OPENED
        while True:
            page = await database.read(
                partial(repository.delivered, after=last, through=hub.through, limit=CATCH_UP_PAGE, user_id=user_id)
            )
            for event in page:
                yield frame(event)
                last = event.position
            if len(page) < CATCH_UP_PAGE:
                break
        while True:
            arrived = await subscription.take(keep_alive_seconds)
            if not arrived:
                yield KEEP_ALIVE
                continue
            for event in arrived:
                if event.position > last:  # the catch-up may already have sent it
                    yield frame(event)
                    last = event.position
    except SubscriptionClosed:
        return  # shutdown or overflow: the response ends cleanly; the client resumes with Last-Event-ID
    except DomainError as error:
        # The database went away during a catch-up: end the stream; the client resumes from its last id.
        log.warning("event stream ended: %s", error.detail)
        return
    finally:
        hub.unsubscribe(subscription)
