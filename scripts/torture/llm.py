"""A fake OpenAI-compatible chat-completions endpoint, served in the torture's own event loop (the harness's
`serve_in_process`), whose answers can be held: while held, every auto-rename of the server under test is
stuck "generating" its title."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.harness.server import serve_in_process

MODEL = "torture-model"
TITLE = "Generated title"


class FakeLlm:
    def __init__(self) -> None:
        self.base_url = ""
        self.entered = 0
        self._entries = asyncio.Condition()
        self._open = asyncio.Event()
        self._open.set()
        self._serving = contextlib.AsyncExitStack()

    def settings(self) -> dict[str, object]:
        """The server settings (Settings fields) that make the service call this endpoint."""
        return {"llm_base_url": self.base_url, "llm_model": MODEL, "llm_timeout": 30}

    def hold(self) -> None:
        self.entered = 0
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def wait_entered(self, count: int, within: float = 60.0) -> bool:
        """Until `count` requests wait in the held handler (each auto-rename has read its thread by then)."""
        try:
            async with asyncio.timeout(within), self._entries:
                await self._entries.wait_for(lambda: self.entered >= count)
        except TimeoutError:
            return False
        return True

    async def _complete(self, request: Request) -> JSONResponse:
        await request.body()
        async with self._entries:
            self.entered += 1
            self._entries.notify_all()
        await self._open.wait()
        body: dict[str, Any] = {
            "id": "chatcmpl-torture",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": TITLE}, "finish_reason": "stop"}],
        }
        return JSONResponse(body)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])
        self.base_url = f"{await self._serving.enter_async_context(serve_in_process(app))}/v1"

    async def stop(self) -> None:
        self.release()  # a held request would keep the server's graceful shutdown waiting
        await self._serving.aclose()
