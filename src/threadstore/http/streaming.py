"""A streaming response that closes its body iterator when it ends, however it ends."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


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
