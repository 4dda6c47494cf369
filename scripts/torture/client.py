"""HTTP clients of the server under test, and the gate that releases a storm of requests together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from scripts.torture.server import JWT_SECRET

from threadstore.auth import issue_token


def new_user(tag: str = "torture") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


class Client:
    """One keep-alive connection pool to the server, signing a token per user."""

    def __init__(self, base_url: str, *, connections: int = 64, timeout: float = 60.0) -> None:
        # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them from its side:
        # reusing one the server is closing at that instant fails a request that never reached it.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0)
        self.http = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout)
        self._tokens: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def headers(self, user: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        token = self._tokens.get(user)
        if token is None:
            token = self._tokens[user] = issue_token(JWT_SECRET, user, None)
        return {"Authorization": f"Bearer {token}", **(extra or {})}

    async def request(
        self, method: str, path: str, user: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers(user, headers), **kwargs)

    async def warm(self, connections: int) -> None:
        """Opens `connections` keep-alive connections, so a storm's requests leave at once instead of
        queueing behind TCP handshakes."""
        await asyncio.gather(*(self.http.get("/healthz") for _ in range(connections)))


async def storm(calls: list[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    """Starts every call as its own task parked on one event, then sets it: the requests leave together."""
    gate, all_parked = asyncio.Event(), asyncio.Event()
    parked = 0

    async def one(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        nonlocal parked
        parked += 1
        if parked == len(calls):
            all_parked.set()
        await gate.wait()
        return await call()

    tasks = [asyncio.create_task(one(call)) for call in calls]
    await all_parked.wait()
    gate.set()
    return list(await asyncio.gather(*tasks))
