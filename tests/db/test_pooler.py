"""Behind a pooler in transaction mode (db/bounds.py): the configuration it needs, and readiness that tells
when the database's session defaults are not the instance's own."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Backend, fresh_database, make_settings, new_user, running_api
from tests.harness.pgbouncer import PgBouncer
from tests.harness.pgbouncer import start as start_pgbouncer
from tests.pg_server import PgServer
from threadstore.config import ConfigError, Settings


def test_transaction_pool_mode_needs_a_direct_url() -> None:
    """LISTEN and the migration lock must not go through the pooler: without a direct URL the instance says so
    instead of holding them on server sessions other clients share."""
    settings = Settings(
        _env_file=None, database_url="postgresql+asyncpg://app@pooler:6432/db", database_pool_mode="transaction"
    )
    with pytest.raises(ConfigError, match="THREADSTORE_DIRECT_DATABASE_URL"):
        _ = settings.resolved_direct_database_url
    direct = settings.model_copy(update={"direct_database_url": "postgresql+asyncpg://app@db:5432/db"})
    assert direct.resolved_direct_database_url == "postgresql+asyncpg://app@db:5432/db"


async def test_readiness_is_503_while_the_database_applies_other_bounds(
    pg_server: PgServer | None, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    async with fresh_database("pgbouncer", pg_server, tmp_path, pooler=pgbouncer) as backend:
        await _readiness_follows_the_bounds(backend, pgbouncer, tmp_path)


async def _readiness_follows_the_bounds(backend: Backend, pgbouncer: PgBouncer, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path)
    async with running_api(backend, settings) as api:
        assert (await api.client.get("/readyz")).status_code == 200
        # Another instance migrated with another lock timeout, and the pooler reconnected.
        await _set_role_default(backend, "lock_timeout", str(settings.lock_timeout_ms + 1))
        try:
            await pgbouncer.reconnect(_database(backend))
            ready = await api.client.get("/readyz")
            assert ready.status_code == 503
            assert "bounds" in ready.json()["detail"]
        finally:
            await _set_role_default(backend, "lock_timeout", str(settings.lock_timeout_ms))
            await pgbouncer.reconnect(_database(backend))
        assert (await api.client.get("/readyz")).status_code == 200


def _database(backend: Backend) -> str:
    assert backend.dsn is not None
    return backend.dsn.rsplit("/", 1)[1]


async def _set_role_default(backend: Backend, name: str, value: str) -> None:
    assert backend.direct_url is not None
    engine = create_async_engine(backend.direct_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'ALTER ROLE CURRENT_USER IN DATABASE "{_database(backend)}" SET {name} = {value}'))
    finally:
        await engine.dispose()


async def test_a_wait_in_pgbouncers_queue_past_query_wait_timeout_is_503_at_once(
    pg_server: PgServer | None, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """PgBouncer gives up on a client that waited `query_wait_timeout` for a server connection, and closes it.
    That is the database being busy (503 now), not a connection lost mid-unit to run again: ten more waits
    would make one request wait ten times the timeout. A read, a one-statement write and a transaction."""
    assert pg_server is not None
    bouncer = start_pgbouncer(pg_server, default_pool_size=1, query_wait_timeout=1)
    assert bouncer is not None
    user = new_user()
    answers = []
    try:
        async with (
            fresh_database("pgbouncer", pg_server, tmp_path, pooler=bouncer) as backend,
            running_api(backend, make_settings(backend, tmp_path)) as api,
        ):
            thread = await api.create_thread(user)
            holder = await asyncpg.connect(bouncer.database_url(_database(backend)).replace("+asyncpg", ""))
            try:
                await holder.execute("BEGIN")
                await holder.execute("SELECT 1")  # PgBouncer's one server connection is held from here
                for method, path, params in (
                    ("GET", f"/api/threads/{thread['id']}", {}),
                    ("PATCH", f"/api/threads/{thread['id']}", {"json": {"title": "t"}}),
                    ("DELETE", f"/api/threads/{thread['id']}", {"params": {"permanent": "true"}}),
                ):
                    started = time.monotonic()
                    response = await api.request(method, path, user=user, **params)
                    answers.append((method, response.status_code, round(time.monotonic() - started, 1)))
            finally:
                await holder.close()
    finally:
        bouncer.stop()
    assert [(method, status) for method, status, _ in answers] == [("GET", 503), ("PATCH", 503), ("DELETE", 503)]
    assert all(waited < 5 for *_, waited in answers), f"the wait was run again: {answers}"
