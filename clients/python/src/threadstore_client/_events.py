"""Following `GET /api/events`, pure: reading SSE frames line by line, and the resume rule — reconnect with
`Last-Event-ID` = the last id yielded, and drop any event whose id is not above it, so an event is never
yielded twice (ids grow strictly). The sync and async streams do the reading and the waiting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from threadstore_client._core import Call, Request, Session, Wait, nothing, problem
from threadstore_client._retry import RetryPolicy, Safety, after_status, after_transport_error
from threadstore_client.errors import APIConnectionError
from threadstore_client.models import EVENT_TYPES, Event, UnknownEvent


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    retry: int | None = None


class FrameReader:
    """SSE (the WHATWG rules a server of ours needs): fields until a blank line, comments ignored."""

    def __init__(self) -> None:
        self._frame = Frame()
        self._seen = False

    def feed(self, line: str) -> Frame | None:
        """A complete frame when `line` ends one, else None."""
        if line == "":
            frame, seen = self._frame, self._seen
            self._frame, self._seen = Frame(), False
            return frame if seen else None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            return None  # a comment: `: connected`, `: keep-alive`
        self._seen = True
        if name == "id":
            self._frame.id = value
        elif name == "event":
            self._frame.event = value
        elif name == "data":
            self._frame.data.append(value)
        elif name == "retry" and value.isdigit():
            self._frame.retry = int(value)
        return None


class Resume:
    """The state of one `events()` iterator across its connections."""

    def __init__(self, policy: RetryPolicy, *, thread_id: str | None, last_event_id: int | None) -> None:
        self.policy = policy
        self.thread_id = thread_id
        self.last_id = last_event_id
        self.failures = 0
        self.server_retry: float | None = None
        self.finished = False

    def request(self, session: Session) -> Request:
        call = Call(method="GET", path="/api/events", parse=nothing, safety=Safety.READ)
        headers = session.headers(call)
        headers["Accept"] = "text/event-stream"
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        params = [] if self.thread_id is None else [("thread_id", self.thread_id)]
        return Request("GET", "/api/events", httpx.QueryParams(tuple(params)), headers, None)

    def opened(self, response: httpx.Response) -> Wait | None:
        """None when the stream is open; a wait before trying again; or the answer's error raised (401, 404,
        409 `expired`: reconnecting cannot help)."""
        if response.status_code == 200:
            self.failures = 0
            self.server_retry = None
            return None
        error = problem(response)
        self.failures += 1
        wait = after_status(self.policy, Safety.READ, self.failures, error.status, error.reason, error.retry_after)
        if wait is None:
            raise error
        return Wait(wait)

    def dropped(self, error: APIConnectionError | None) -> Wait:
        """The connection failed (`error`) or the server ended the stream (None): the wait before reconnecting,
        or `error` raised once the policy's attempts in a row have failed."""
        if error is None:
            # A clean end (shutdown, token expiry, eviction): come back at once unless the server asked for
            # a `retry:` delay; a restarting server then answers with connection errors, counted below.
            return Wait(self.server_retry or 0.0)
        self.failures += 1
        wait = after_transport_error(self.policy, Safety.READ, self.failures, error)
        if wait is None:
            raise error
        return Wait(wait)

    def accept(self, frame: Frame) -> Event | None:
        """The event to yield for `frame`, or None (a repeat, or a frame without an event)."""
        if frame.retry is not None:
            self.server_retry = frame.retry / 1000
        if frame.id is None or not frame.id.isdigit():
            return None
        event_id = int(frame.id)
        if self.last_id is not None and event_id <= self.last_id:
            return None
        self.last_id = event_id
        if frame.event is None:
            # An id without an event: the stream's opening frame names the position it starts after, to resume
            # from if it drops before its first event (as a browser's EventSource keeps it).
            return None
        data = json.loads("\n".join(frame.data)) if frame.data else None
        if self.thread_id is not None and frame.event == "thread.deleted":
            self.finished = True  # nothing can follow; a reconnect would be 404
        kind = EVENT_TYPES.get(frame.event)
        if kind is None:
            return UnknownEvent(id=event_id, type=frame.event, data=data)
        event: Event = kind.model_validate({"id": event_id, "data": data})  # type: ignore[assignment]
        return event
