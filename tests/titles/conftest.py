"""A real HTTP server speaking the chat-completions protocol, with one URL prefix per behaviour."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.harness.server import serve_in_process

SLOW_SECONDS = 2.0


@dataclass(frozen=True)
class RecordedRequest:
    scenario: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ChatServer:
    base_url: str
    requests: list[RecordedRequest] = field(default_factory=list)

    def url(self, scenario: str) -> str:
        return f"{self.base_url}/{scenario}"

    def last(self, scenario: str) -> RecordedRequest:
        return [r for r in self.requests if r.scenario == scenario][-1]


def completion(content: object) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


def _app(recorded: list[RecordedRequest]) -> FastAPI:
    app = FastAPI()

    @app.post("/{scenario}/chat/completions")
    async def complete(scenario: str, request: Request) -> Response:
        recorded.append(RecordedRequest(scenario, dict(request.headers), await request.body()))
        if scenario == "ok":
            return JSONResponse(completion("Lisbon family trip"))
        if scenario == "quoted":
            return JSONResponse(completion('\n  "Title: Lisbon Family Trip."\nThis title captures the request.'))
        if scenario == "error":
            # Echo the credential, as some proxies do, so the test can check that logs redact it.
            auth = request.headers.get("authorization", "")
            return Response(f'{{"error": "upstream failed for {auth}"}}', status_code=500)
        if scenario == "rate-limited":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if scenario == "html":
            return Response("<html><body>Bad gateway</body></html>", media_type="text/html")
        if scenario == "no-choices":
            return JSONResponse({"error": {"message": "no"}})
        if scenario == "empty-choices":
            return JSONResponse({"choices": []})
        if scenario == "null-content":
            return JSONResponse(completion(None))
        if scenario == "list-body":
            return JSONResponse([1, 2, 3])
        if scenario == "punctuation":
            return JSONResponse(completion(' "?!..." — '))
        if scenario == "slow":
            # Stop as soon as the client gives up, so shutting the server down does not wait for us.
            deadline = time.monotonic() + SLOW_SECONDS
            while time.monotonic() < deadline:
                if await request.is_disconnected():
                    return Response(status_code=499)
                await asyncio.sleep(0.05)
            return JSONResponse(completion("Too late"))
        return Response(status_code=404)

    return app


@pytest.fixture(scope="session")
async def chat_server() -> AsyncIterator[ChatServer]:
    recorded: list[RecordedRequest] = []
    async with serve_in_process(_app(recorded), graceful_seconds=1) as url:
        yield ChatServer(url, recorded)


@pytest.fixture
def closed_port_url() -> str:
    """A URL nothing listens on: the port was just bound and released, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
