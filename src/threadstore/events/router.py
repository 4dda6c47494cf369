"""HTTP for events: `GET /api/events`, the caller's Server-Sent Events stream, or one thread's (`thread_id`)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic.json_schema import SkipJsonSchema

from threadstore.db.outbox import (
    MESSAGE_CREATED,
    MESSAGE_DELETED,
    MESSAGE_DELTA,
    MESSAGE_UPDATED,
    THREAD_CREATED,
    THREAD_DELETED,
    THREAD_UPDATED,
)
from threadstore.errors import BadRequest
from threadstore.events.hub import Hub
from threadstore.events.publisher import Publisher
from threadstore.events.service import start_after
from threadstore.events.stream import event_frames
from threadstore.http.deps import (
    EVENTS_COOKIE,
    CurrentIdentity,
    DatabaseDep,
    EventsIdentity,
    SettingsDep,
    VerifierDep,
)
from threadstore.http.openapi import AUTHENTICATED, ONE_THREAD, problem
from threadstore.http.streaming import ClosingStreamingResponse
from threadstore.ids import id_pattern
from threadstore.threads import service as threads

router = APIRouter(tags=["events"])

LAST_EVENT_ID_PATTERN = "^([0-9]{1,18})?$"  # positions are BIGINTs; 18 digits always fit. Empty: a new stream.
_EVENT_ID = re.compile(LAST_EVENT_ID_PATTERN)


def _event_schema(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"const": kind},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


# One event of the stream (OpenAPI 3.1 has a text/event-stream schema describe each event): its `data` is the
# object as the API returns it, or the id of a thread deleted for good.
_THREAD = {"$ref": "#/components/schemas/ThreadOut"}
_MESSAGE = {"$ref": "#/components/schemas/MessageOut"}
EVENT_SCHEMA = {
    "oneOf": [
        _event_schema(THREAD_CREATED, _THREAD),
        _event_schema(THREAD_UPDATED, _THREAD),
        _event_schema(THREAD_DELETED, {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}),
        _event_schema(MESSAGE_CREATED, _MESSAGE),
        # API v2: a branch deleted (its first message's id and how many went), a reply's delta, a message changed.
        _event_schema(
            MESSAGE_DELETED,
            {
                "type": "object",
                "required": ["id", "thread_id", "deleted_count"],
                "properties": {
                    "id": {"type": "string"},
                    "thread_id": {"type": "string"},
                    "deleted_count": {"type": "integer", "minimum": 1},
                },
            },
        ),
        _event_schema(
            MESSAGE_DELTA,
            {
                "type": "object",
                "required": ["message_id", "thread_id", "offset", "text"],
                "properties": {
                    "message_id": {"type": "string"},
                    "thread_id": {"type": "string"},
                    "offset": {"type": "integer", "minimum": 0},
                    "text": {"type": "string", "minLength": 1},
                },
            },
        ),
        _event_schema(MESSAGE_UPDATED, _MESSAGE),
    ]
}


def parse_last_event_id(value: str | None) -> int | None:
    """The position to resume after; None for a new stream. An empty value is what a browser's EventSource
    sends when the last event had none: a new stream too."""
    if value is None or not value.strip():
        return None
    if not _EVENT_ID.fullmatch(value.strip()):
        raise BadRequest("Last-Event-ID must be an event id received from this stream.")
    return int(value.strip())


# A bearer token without `exp` gets a cookie for a day; a token with one, until it.
EVENTS_COOKIE_DEFAULT_SECONDS = 24 * 3600


@router.post(
    "/api/events/session",
    status_code=204,
    operation_id="open_events_session",
    responses={
        204: {
            "description": f"Sets the `{EVENTS_COOKIE}` cookie, with which `GET /api/events` is accepted without "
            "an Authorization header (a browser's EventSource cannot send one), until the bearer token's `exp`. "
            "It opens the caller's event stream and no other request.",
            "headers": {"Set-Cookie": {"description": "The events cookie.", "schema": {"type": "string"}}},
        },
        **problem(401),
    },
)
async def open_events_session(
    request: Request, identity: CurrentIdentity, settings: SettingsDep, verifier: VerifierDep
) -> Response:
    now = time.time()
    token, expires_at = verifier.events_token(identity, now, EVENTS_COOKIE_DEFAULT_SECONDS)
    response = Response(status_code=204)
    response.set_cookie(
        EVENTS_COOKIE,
        token,
        # Whole seconds, rounded down: the browser drops the cookie no later than the token expires.
        max_age=max(0, math.floor(expires_at - now)),
        expires=datetime.fromtimestamp(math.floor(expires_at), UTC),
        path="/api/events",
        httponly=True,
        samesite=settings.events_cookie_samesite,
        # SameSite=None is refused by browsers without Secure.
        secure=settings.events_cookie_secure
        or settings.events_cookie_samesite == "none"
        or request.url.scheme == "https",
    )
    return response


@router.get(
    "/api/events",
    operation_id="stream_events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `id: <event id>`, `event: <type>`, `data: <the object as JSON>`; "
            "a comment at least every 15 seconds.",
            "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
        },
        **AUTHENTICATED,
        **ONE_THREAD,
        **problem(400, "Last-Event-ID is not an event id."),
        **problem(409, "The events after Last-Event-ID are no longer kept: reload, then stream without it."),
    },
)
async def stream_events(
    request: Request,
    identity: EventsIdentity,
    database: DatabaseDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | SkipJsonSchema[None],
        Header(
            alias="Last-Event-ID",
            description="Resume right after this event id (empty: a new stream).",
            json_schema_extra={"pattern": LAST_EVENT_ID_PATTERN},
        ),
    ] = None,
    thread_id: Annotated[
        str | SkipJsonSchema[None],
        Query(
            description="Follow this thread's events only (it must be the caller's). Event ids stay the "
            "positions of all events, so a thread's stream skips ids; it ends after `thread.deleted`.",
            json_schema_extra={"pattern": id_pattern("thr")},
        ),
    ] = None,
) -> StreamingResponse:
    resume = parse_last_event_id(last_event_id)
    hub: Hub = request.app.state.event_hub
    publisher: Publisher = request.app.state.event_publisher
    if thread_id is not None:
        # Before registering: a 404 must not close one of the user's open streams (the cap).
        await database.read(threads.require_owned, identity.user_id, thread_id)
    # Register before reading the start point: whatever is published after that read reaches the queue.
    subscription = await hub.subscribe(identity.user_id, thread_id)
    try:
        after = await start_after(database, publisher, resume)
        if thread_id is not None:
            # Again, now that the start is fixed: a deletion committed since the first look may lie at or
            # below `after`, and the stream would wait for its thread for ever. One committed after this look
            # is delivered above `after`, so the stream sends its `thread.deleted` and ends.
            await database.read(threads.require_owned, identity.user_id, thread_id)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    frames = event_frames(
        hub,
        database,
        subscription,
        after,
        keep_alive_seconds=settings.event_keep_alive_seconds,
        page_bytes=settings.event_page_bytes,
        evicted_retry_ms=settings.event_evicted_retry_ms,
        ends_at=identity.expires_at,
    )
    return ClosingStreamingResponse(
        frames, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
