"""Read-your-writes across a read replica, at the HTTP edge of the app (the rule is in db/replica.py).

Each request gets its `ReadAfter`: the client's `X-Read-After` fills what its reads must see, and a write's
commit fills the position its answer then carries in `X-Read-After`. Installed only when a replica is
configured; without one no write pays the round trip that reads its position.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from pydantic.json_schema import SkipJsonSchema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadstore.db.replica import POSITION_PATTERN, READ_AFTER, LastWrites, ReadAfter, format_position, parse_position
from threadstore.errors import Unprocessable

HEADER = "X-Read-After"
SENT_PATTERN = "^$|" + POSITION_PATTERN


class ReadAfterMiddleware:
    def __init__(self, app: ASGIApp, last_writes: LastWrites) -> None:
        self.app = app
        self.last_writes = last_writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read_after = ReadAfter(self.last_writes)
        token = READ_AFTER.set(read_after)

        async def send_position(message: Message) -> None:
            # The answer starts after the request's writes committed (the transaction owner commits before a
            # handler returns), so the position is final here.
            if message["type"] == "http.response.start" and read_after.written:
                position = format_position(read_after.written).encode()
                message["headers"] = [*message.get("headers", []), (HEADER.lower().encode(), position)]
            await send(message)

        try:
            await self.app(scope, receive, send_position)
        finally:
            READ_AFTER.reset(token)


async def _read_after(
    x_read_after: Annotated[
        str | SkipJsonSchema[None],
        Header(
            alias=HEADER,
            description="The `X-Read-After` of an earlier write's answer: this read then sees that write, from "
            'any instance (docs/api.md, "Read replicas"). Without a replica it changes nothing; empty is absent.',
            json_schema_extra={"pattern": SENT_PATTERN},
        ),
    ] = None,
) -> None:
    # Checked here rather than by the parameter's `pattern`, so that an empty value (what a client with no
    # position yet may send) counts as absent and a malformed one is the API's usual 422.
    if not x_read_after:
        return
    position = parse_position(x_read_after.strip())
    if position is None:
        raise Unprocessable(
            f"{HEADER} must be the {HEADER} of an earlier answer.",
            errors=[{"loc": ["header", HEADER], "msg": "not a WAL position such as 0/3000148"}],
        )
    read_after = READ_AFTER.get()
    if read_after is not None:
        read_after.sent = position


# For the routes whose reads a replica may serve: declares and reads the header.
ReadAfterHeader = Depends(_read_after)


def note_user(user_id: str) -> None:
    """The request's user: their writes through this process are remembered for their later reads."""
    read_after = READ_AFTER.get()
    if read_after is not None:
        read_after.user_id = user_id
