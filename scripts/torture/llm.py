"""A fake OpenAI-compatible chat-completions endpoint, run in the torture's own event loop, whose answers can
be held: while held, every auto-rename of the server under test is stuck "generating" its title."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MODEL = "torture-model"
TITLE = "Generated title"


class FakeLlm:
    def __init__(self) -> None:
        self.base_url = ""
        self.entered = 0
        self._entries = asyncio.Condition()
        self._open = asyncio.Event()
        self._open.set()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

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
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 30
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise RuntimeError("the fake LLM did not start")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        self.release()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 15)
