"""Test harness: every API test runs on SQLite and on PostgreSQL, through the real ASGI app and the real
transaction owner. Each run makes its own databases; nothing depends on state from an earlier run.

After every test that used an app, the harness asserts the pool has no checked-out connection and, on
PostgreSQL, that no backend of this run is left `idle in transaction`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.pg_server import PgServer, find_server
from threadstore.app import create_app
from threadstore.auth import issue_token
from threadstore.config import Settings
from threadstore.db import migrate
from threadstore.db.unit_of_work import Database
from threadstore.http.middleware import RequestContextMiddleware

JWT_SECRET = "test-secret-" + "x" * 40
RUN_ID = secrets.token_hex(4)
APP_NAME = f"threadstore-test-{RUN_ID}"

_pg_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test needs SQLite (skipped on PostgreSQL)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = _pg_state.get("missing")
    if reason:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        terminalreporter.write_line(f"PostgreSQL SUITE SKIPPED: {reason}", red=True, bold=True)
        terminalreporter.write_line(
            "Set THREADSTORE_TEST_DATABASE_URL, start PostgreSQL on 127.0.0.1:5432, or install its binaries.",
            red=True,
        )
        terminalreporter.write_line(bar, red=True, bold=True)
    else:
        server = _pg_state.get("server")
        if server is not None:
            terminalreporter.write_line(f"PostgreSQL suite ran against: {server.how}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    server = find_server()
    if server is None:
        _pg_state["missing"] = "no PostgreSQL server could be found or started"
        if os.environ.get("CI"):
            pytest.fail("CI is set and no PostgreSQL server is available: the PostgreSQL suite is required.")
    _pg_state["server"] = server
    yield server
    if server is not None:
        server.stop()


@dataclass
class Backend:
    name: str
    url: str
    dsn: str | None = None  # plain libpq DSN of the test database (PostgreSQL only)

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"


async def execute_sql(dsn: str, sql: str) -> None:
    """Runs SQL on its own connection, outside the app (schema tweaks, seeding, database creation)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_pg_database(server: PgServer, name: str) -> None:
    await execute_sql(server.dsn(), f'CREATE DATABASE "{name}"')


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


@asynccontextmanager
async def fresh_database(
    kind: str, server: PgServer | None, tmp: Path, *, migrated: bool = True
) -> AsyncIterator[Backend]:
    """A new database of `kind` (migrated unless told otherwise); dropped afterwards."""
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
    await _create_pg_database(server, name)
    try:
        backend = Backend("postgresql", server.database_url(name), server.dsn(name))
        if migrated:
            await migrate.upgrade(backend.url)
        yield backend
    finally:
        await _drop_pg_database(server, name)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    async with fresh_database(request.param, pg_server, tmp_path_factory.mktemp("db")) as created:
        yield created


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A backend-specific test is collected for its backend only (deselected, not skipped, elsewhere)."""
    keep, drop = [], []
    for item in items:
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        wrong = (item.get_closest_marker("postgres_only") and backend == "sqlite") or (
            item.get_closest_marker("sqlite_only") and backend == "postgresql"
        )
        (drop if wrong else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def make_settings(backend: Backend, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": backend.url,
        "jwt_secret": JWT_SECRET,
        "data_dir": tmp,
        "application_name": APP_NAME,
        "pool_size": 5,
        "pool_max_overflow": 5,
        "pool_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    """A client of the real ASGI app, plus handles on its internals for assertions and fault injection."""

    client: httpx.AsyncClient
    app: FastAPI
    backend: Backend

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    def auth(self, user: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(JWT_SECRET, user or new_user(), None)}"}

    async def request(self, method: str, url: str, *, user: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(user), **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


class CheckoutLedger:
    """Counts pool checkouts and checkins through the pool's own events.

    `pool.checkedout()` cannot be read after shutdown (dispose() resets it) and reading it before shutdown
    races with background work, so the ledger is what the leak check reads."""

    def __init__(self, engine: Any) -> None:
        self._out: set[int] = set()  # connection records, so a repeated checkin cannot hide a leak
        event.listen(engine.sync_engine, "checkout", self._checkout)
        event.listen(engine.sync_engine, "checkin", self._checkin)

    @property
    def outstanding(self) -> int:
        return len(self._out)

    def _checkout(self, _dbapi: Any, record: Any, *_: Any) -> None:
        self._out.add(id(record))

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        self._out.discard(id(record))


@asynccontextmanager
async def running_api(backend: Backend, settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    asgi = RequestContextMiddleware(app, max_body_bytes=settings.max_body_bytes)
    async with app.router.lifespan_context(app):
        ledger = CheckoutLedger(app.state.database.engine)
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadstore.test") as client:
            yield Api(client=client, app=app, backend=backend)
    # Judged after shutdown, when background work has stopped.
    await assert_no_leaks(ledger, backend)


async def assert_no_leaks(ledger: CheckoutLedger, backend: Backend) -> None:
    # Give cancelled tasks a moment to finish their shielded cleanup before judging.
    for _ in range(50):
        if ledger.outstanding == 0:
            break
        await asyncio.sleep(0.02)
    assert ledger.outstanding == 0, f"{ledger.outstanding} connection(s) not returned to the pool"
    if backend.is_postgres:
        assert await idle_in_transaction(backend) == [], "a transaction was left open"


async def idle_in_transaction(backend: Backend) -> list[str]:
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


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def api(backend: Backend, tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Api]:
    async with running_api(backend, make_settings(backend, tmp_path, **settings_overrides)) as created:
        yield created


@pytest.fixture
def user() -> str:
    return new_user()


Factory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def create_thread(api: Api, user: str) -> Factory:
    async def create(**body: Any) -> dict[str, Any]:
        owner = body.pop("_user", user)
        response = await api.request("POST", "/api/threads", user=owner, json=body)
        assert response.status_code == 201, response.text
        thread: dict[str, Any] = response.json()
        return thread

    return create


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PgServer]:
    """A PostgreSQL cluster of this run's own, which tests may stop (`pg_ctl_stop("immediate")`) and start
    again. The shared server is never stopped: other runs on the machine may be using it. Without the
    PostgreSQL binaries the test is skipped loudly, and fails when `CI` is set."""
    from tests.pg_server import start_private_cluster

    server = start_private_cluster()
    if server is None:
        message = "no PostgreSQL binaries (pg_ctl, initdb) to start a private cluster for stop/restart tests"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}")
        _pg_state.setdefault("missing", message)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.stop()
