"""Streamed answers: a response that closes its body iterator when it ends, however it ends, and the NDJSON
representation of a list read in pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import anyio
import orjson
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from threadstore.errors import StreamCutOff


class ClosingStreamingResponse(StreamingResponse):
    """Starlette stops iterating a streaming body when the client disconnects but leaves the generator
    suspended: its `finally` and what its frame holds wait for the garbage collector, and an exception's
    traceback can tie it into a cycle that only a full collection frees (rare here: app.py freezes the heap and
    raises the thresholds). Closing it at the end releases both at once."""

    body_iterator: AsyncGenerator[bytes, None]

    def __init__(
        self, content: AsyncGenerator[bytes, None], *, media_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.body_iterator = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: the task is being cancelled (the client left) and the close must still run.
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


NDJSON = "application/x-ndjson"

log = logging.getLogger("threadstore.http")


async def ndjson_lines(pages: AsyncGenerator[list[Any], None]) -> AsyncGenerator[bytes, None]:
    """One JSON document per line, a chunk per page (closing `pages` when the stream ends, however it ends).

    A failure after the first chunk is raised out of the body: the status line has gone, so the server can only
    end the connection without the chunked encoding's last chunk, and the client sees a truncated transfer
    instead of a short answer that looks complete."""
    sent = 0
    async with aclosing(pages):
        try:
            async for page in pages:
                chunk = b"".join(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE) for item in page)
                sent += len(page)
                del page  # not kept while the next page is read
                yield chunk
        except Exception as error:
            # The unit of work logged the failure itself; the app's error handlers can no longer answer it.
            log.warning("streamed answer cut off after %d lines: %s", sent, type(error).__name__)
            raise StreamCutOff() from error
