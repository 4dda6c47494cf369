"""Three `threadstore serve` processes on one database through PgBouncer in transaction mode, as a deployment
runs them behind a balancer: every race family's storm is spread across the three (each request goes to the
next instance), and the events written through any of them reach the streams of all three."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from scripts.torture.client import Client, torture_server
from scripts.torture.dbview import Inspector
from scripts.torture.family import Race
from scripts.torture.llm import FakeLlm
from scripts.torture.races import FAMILIES

from tests.conftest import fresh_database, new_user
from tests.harness.client import Frame
from tests.harness.pgbouncer import PgBouncer
from tests.harness.processes import ServeProcess
from tests.pg_server import PgServer

INSTANCES = 3
CLIENTS = 32


class SpreadClient(Client):
    """One torture client whose requests go to the instances in turn, as a round-robin balancer sends them."""

    def __init__(self, base_urls: list[str], *, connections: int) -> None:
        super().__init__(base_urls[0], connections=connections)
        self._all = [self.http] + [Client(url, connections=connections).http for url in base_urls[1:]]
        self._next = itertools.cycle(self._all)

    async def aclose(self) -> None:
        for http in self._all:
            await http.aclose()

    async def request(
        self, method: str, path: str, user: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await next(self._next).request(method, path, headers=self.headers(user, headers), **kwargs)

    async def warm(self, connections: int) -> None:
        await asyncio.gather(*(http.get("/healthz") for http in self._all for _ in range(connections)))


@dataclass
class Deployment:
    servers: list[ServeProcess]
    client: SpreadClient
    db: Inspector
    llm: FakeLlm


@pytest.fixture(scope="module")
async def deployment(
    pg_server: PgServer | None, pgbouncer: PgBouncer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    tmp: Path = tmp_path_factory.mktemp("instances")
    async with fresh_database("pgbouncer", pg_server, tmp, pooler=pgbouncer) as backend:
        llm = FakeLlm()
        await llm.start()
        # Keep-alives and polls fast, as the event tests run them; each instance's own pool is the default's.
        fast = {"event_keep_alive_seconds": 0.2, "event_poll_interval_seconds": 0.2, **llm.settings()}
        servers = [torture_server(tmp / f"instance-{n}", backend, **fast) for n in range(INSTANCES)]
        client = SpreadClient([s.base_url for s in servers], connections=80)
        db = Inspector(backend.direct_url or backend.url)
        try:
            for server in servers:  # one after another: the first migrates, the others find the schema current
                await server.start()
            yield Deployment(servers, client, db, llm)
        finally:
            await client.aclose()
            for server in servers:
                await server.aclose()
            await db.dispose()
            await llm.stop()


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_family_invariant_holds_across_three_instances(deployment: Deployment, family: str) -> None:
    await deployment.client.warm(CLIENTS // INSTANCES + 1)
    race = Race(deployment.client, deployment.db, clients=CLIENTS, llm=deployment.llm)
    result = await FAMILIES[family](race)
    assert result.violations == [], result.violations
    assert 503 not in result.statuses and 500 not in result.statuses, result.statuses


async def test_events_written_through_any_instance_reach_every_instances_streams(deployment: Deployment) -> None:
    """Each instance appends to one thread in turn; a stream on each instance sees every event, in id order.
    Delivery crosses instances by NOTIFY on each one's direct LISTEN connection (the poll is the fallback)."""
    user = new_user()
    apis = [server.api for server in deployment.servers]
    async with (
        apis[0].stream(user) as first,
        apis[1].stream(user) as second,
        apis[2].stream(user) as third,
    ):
        thread = await apis[0].create_thread(user)
        written = [thread] + [await apis[n % INSTANCES].append(user, thread["id"], f"m{n}") for n in range(9)]
        received: list[list[Frame]] = [await s.events(len(written)) for s in (first, second, third)]
    for frames in received:
        assert [f.data for f in frames] == written
        ids = [int(str(f.id)) for f in frames]
        assert ids == sorted(ids)
    assert [f.id for f in received[0]] == [f.id for f in received[1]] == [f.id for f in received[2]]
