"""Read-your-writes through the client (docs/api.md "Read replicas"): behind a balancer that sends its writes to
one instance and its reads to another whose replica lags, the client sends back the newest `X-Read-After`
and reads what it wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.harness.databases import Backend, fresh_database, new_user
from tests.harness.processes import ServeProcess
from tests.harness.replica import ReplicaPair
from threadstore_client import Client

from .conftest import token_of


class Balancer(httpx.HTTPTransport):
    """Writes to one instance, reads to the other: the worst a balancer may do to a client."""

    def __init__(self, writes: ServeProcess, reads: ServeProcess) -> None:
        super().__init__()
        self.writes, self.reads = writes, reads

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self.reads if request.method == "GET" else self.writes
        request.url = request.url.copy_with(port=target.port)
        return super().handle_request(request)


@pytest.fixture(scope="module")
async def primary(replica_pair: ReplicaPair, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    async with fresh_database("postgresql", replica_pair.primary, tmp_path_factory.mktemp("primary")) as created:
        await replica_pair.caught_up()
        yield created


async def test_a_client_reads_its_writes_through_a_lagging_replica(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    replica = {"read_database_url": replica_pair.replica_url(make_url(primary.url).database or "")}
    async with (
        ServeProcess(tmp_path / "a", primary, settings=replica) as writes,
        ServeProcess(tmp_path / "b", primary, settings=replica) as reads,
    ):
        user = new_user()
        http = httpx.Client(base_url=writes.base_url, transport=Balancer(writes, reads))
        await replica_pair.pause_replay()
        try:
            with Client(writes.base_url, token_of(user), http_client=http) as client:
                thread = client.threads.create(title="just written")
                message = client.messages.append(thread.id, "hello")
                assert client.read_after is not None
                assert client.threads.get(thread.id).message_count == 1
                assert [m.id for m in client.messages.list_all(thread.id)] == [message.id]
            # Without the position, the other instance answers from the paused replica: the write is not there.
            blind = await reads.api.request("GET", f"/api/threads/{thread.id}", user=user)
            assert blind.status_code == 404
        finally:
            await replica_pair.resume_replay()
