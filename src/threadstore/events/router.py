"""HTTP for events: `GET /api/events`, the caller's Server-Sent Events stream."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from threadstore.errors import BadRequest
from threadstore.events.hub import Hub
from threadstore.events.publisher import Publisher
from threadstore.events.service import start_after
from threadstore.events.stream import event_frames
from threadstore.http.deps import CurrentIdentity, DatabaseDep, SettingsDep
from threadstore.http.streaming import ClosingStreamingResponse

router = APIRouter(tags=["events"])

_EVENT_ID = re.compile(r"[0-9]{1,18}")  # positions are BIGINTs; 18 digits always fit


def parse_last_event_id(value: str | None) -> int | None:
    """The position to resume after; None for a new stream. An empty value is what a browser's EventSource
    sends when the last event had none: a new stream too."""
    if value is None or not value.strip():
        return None
    if not _EVENT_ID.fullmatch(value.strip()):
        raise BadRequest("Last-Event-ID must be an event id received from this stream.")
    return int(value.strip())


@router.get(
    "/api/events",
    operation_id="stream_events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_events(
    request: Request,
    identity: CurrentIdentity,
    database: DatabaseDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    resume = parse_last_event_id(last_event_id)
    hub: Hub = request.app.state.event_hub
    publisher: Publisher = request.app.state.event_publisher
    # Register before reading the start point: whatever is published after that read reaches the queue.
    subscription = await hub.subscribe(identity.user_id)
    try:
        after = await start_after(database, publisher, resume)
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
