"""The server under test, its HTTP clients, and the gate that releases a storm of requests together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from tests.harness.databases import Backend
from tests.harness.processes import ServeProcess

from threadstore.auth import issue_token

JWT_SECRET = "torture-secret-" + "t" * 40


def torture_server(workdir: Path, backend: Backend, **settings: object) -> ServeProcess:
    """A `threadstore serve` process the torture's clients can talk to (they sign with its secret). Two shared
    cores run it, other test runs and the database: a burst of 40 clients may wait longer than production's
    5 s for a pooled connection. The invariants do not depend on it."""
    return ServeProcess(workdir, backend, jwt_secret=JWT_SECRET, settings={"pool_timeout": 30, **settings})


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

    async def transaction_retries(self) -> float:
        """The server's count of units of work re-run after 40001/40P01 (its Prometheus counter)."""
        text = (await self.http.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith("threadstore_db_transaction_retries_total "):
                return float(line.split()[1])
        return 0.0


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
