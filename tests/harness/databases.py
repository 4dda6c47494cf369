"""Databases for tests: every run makes its own, so nothing depends on state from an earlier run."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.harness.pgbouncer import PgBouncer
from tests.pg_server import PgServer
from threadstore.config import Settings
from threadstore.db import migrate
from threadstore.db.bounds import SessionDefaults, applied, write_role_defaults

JWT_SECRET = "test-secret-" + "x" * 40
RUN_ID = secrets.token_hex(4)
# Every connection of this run's apps carries it: the leak check looks for this run's transactions only.
APP_NAME = f"threadstore-test-{RUN_ID}"


POSTGRES_BACKENDS = ("postgresql", "pgbouncer")


@dataclass
class Backend:
    """`pgbouncer`: PostgreSQL through PgBouncer in transaction mode; `url` is PgBouncer's, `direct_url` the
    database's own (the app's THREADSTORE_DIRECT_DATABASE_URL)."""

    name: str
    url: str
    dsn: str | None = None  # plain libpq DSN of the test database, straight to PostgreSQL (PostgreSQL only)
    direct_url: str | None = None
    pooler: PgBouncer | None = None

    @property
    def is_postgres(self) -> bool:
        return self.name in POSTGRES_BACKENDS

    @property
    def through_pooler(self) -> bool:
        return self.pooler is not None

    def settings(self) -> dict[str, Any]:
        """The settings that point an app (or `threadstore serve`) at this database."""
        if self.pooler is None:
            return {"database_url": self.url}
        return {"database_url": self.url, "database_pool_mode": "transaction", "direct_database_url": self.direct_url}


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def make_settings(backend: Backend, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **backend.settings(),
        "jwt_secret": JWT_SECRET,
        "data_dir": tmp,
        "application_name": APP_NAME,
        "pool_size": 5,
        "pool_max_overflow": 5,
        "pool_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def execute_sql(dsn: str, sql: str) -> None:
    """Runs SQL on its own connection, outside the app (schema tweaks, seeding, database creation)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drop_pg_database(server: PgServer, name: str) -> None:
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def use_session_defaults(backend: Backend, settings: Settings) -> None:
    """Through PgBouncer: makes `settings`' bounds the database's, as an operator does when changing them
    (`threadstore migrate`, then RECONNECT), so an app with bounds of its own runs under them."""
    if backend.pooler is None or backend.direct_url is None:
        return
    wanted = SessionDefaults.of(settings)
    engine = create_async_engine(backend.direct_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if await applied(conn) == wanted:
                return
            await write_role_defaults(conn, wanted)
    finally:
        await engine.dispose()
    await backend.pooler.reconnect(make_url(backend.direct_url).database or "")


@asynccontextmanager
async def fresh_database(
    kind: str, server: PgServer | None, tmp: Path, *, migrated: bool = True, pooler: PgBouncer | None = None
) -> AsyncIterator[Backend]:
    """A new database of `kind` (migrated unless told otherwise); dropped afterwards. `kind` "pgbouncer" is a
    PostgreSQL database reached through `pooler`, migrated as `threadstore migrate` does behind it."""
    if kind == "sqlite":
        path = tmp / f"threadstore-{uuid.uuid4().hex[:8]}.db"
        backend = Backend("sqlite", f"sqlite+aiosqlite:///{path}")
        if migrated:
            await migrate.upgrade(backend.url)
        yield backend
        return
    if server is None:
        pytest.skip("PostgreSQL is not available (see the banner at the end of the run)")
    name = f"threadstore_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await execute_sql(server.dsn(), f'CREATE DATABASE "{name}"')
    try:
        if kind == "pgbouncer":
            assert pooler is not None, "a database through PgBouncer needs the run's PgBouncer"
            direct = server.database_url(name)
            backend = Backend(kind, pooler.database_url(name), server.dsn(name), direct_url=direct, pooler=pooler)
            defaults: SessionDefaults | None = SessionDefaults.of(make_settings(backend, tmp))
        else:
            backend = Backend("postgresql", server.database_url(name), server.dsn(name))
            defaults = None
        if migrated:
            await migrate.upgrade(backend.direct_url or backend.url, role_defaults=defaults)
        yield backend
    finally:
        await _drop_pg_database(server, name)


async def idle_in_transaction(backend: Backend) -> list[str]:
    """This run's backends that sit in an open transaction (a leaked unit of work)."""
    assert backend.dsn is not None
    conn = await asyncpg.connect(backend.dsn)
    try:
        rows = await conn.fetch(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = $1"
            " AND state LIKE 'idle in transaction%'",
            APP_NAME,
        )
    finally:
        await conn.close()
    return [f"{r['state']}: {r['query']}" for r in rows]
