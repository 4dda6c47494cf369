"""Race and crash tests run against a real `threadstore serve` subprocess, over HTTP, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scripts.torture.client import Client, torture_server
from scripts.torture.dbview import Inspector
from scripts.torture.llm import FakeLlm

from tests.conftest import fresh_database, pooler_for
from tests.harness.processes import ServeProcess
from tests.pg_server import PgServer

# Each target: (database kind, isolation level the service runs at).
TARGETS = {
    "sqlite": ("sqlite", "SERIALIZABLE"),  # SQLite is serializable whatever the setting says
    "postgresql": ("postgresql", "READ COMMITTED"),
    "postgresql-serializable": ("postgresql", "SERIALIZABLE"),
    "pgbouncer": ("pgbouncer", "READ COMMITTED"),  # modules marked through_pgbouncer only
}


@dataclass
class Target:
    name: str
    server: ServeProcess
    client: Client
    db: Inspector
    llm: FakeLlm


# Module scope: the servers and their pooled connections go away when the race module is done (the shared
# PostgreSQL server's connection slots are shared with other runs).
@pytest.fixture(scope="module", params=list(TARGETS))
async def target(
    request: pytest.FixtureRequest, pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    kind, isolation = TARGETS[request.param]
    tmp: Path = tmp_path_factory.mktemp(f"race-{request.param}")
    async with fresh_database(kind, pg_server, tmp, pooler=pooler_for(kind, request)) as backend:
        llm = FakeLlm()
        await llm.start()
        server = torture_server(tmp, backend, isolation_level=isolation, **llm.settings())
        db = Inspector(backend.direct_url or backend.url)
        client = Client(server.base_url, connections=80)
        try:
            await server.start()
            yield Target(request.param, server, client, db, llm)
        finally:
            await client.aclose()
            await server.aclose()
            await db.dispose()
            await llm.stop()
