"""Fixtures of the test harness (tests/harness): every API test runs on SQLite and on PostgreSQL, through the
real ASGI app and the real transaction owner. Each run makes its own databases; nothing depends on state
from an earlier run.

After every test that used an app, the harness asserts the pool has no checked-out connection and, on
PostgreSQL, that no backend of this run is left `idle in transaction`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.app import running_api
from tests.harness.client import Api, Factory
from tests.harness.databases import (
    APP_NAME,
    JWT_SECRET,
    Backend,
    execute_sql,
    fresh_database,
    idle_in_transaction,
    make_settings,
    new_user,
)
from tests.pg_server import PgServer, find_server

# Test modules import these from here, as they did before the harness moved to tests/harness.
__all__ = [
    "APP_NAME",
    "JWT_SECRET",
    "Api",
    "Backend",
    "Factory",
    "execute_sql",
    "fresh_database",
    "idle_in_transaction",
    "make_settings",
    "new_user",
    "running_api",
]

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


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings of the test's app beyond the harness's own; a module overrides or parametrizes it."""
    return {}


@pytest.fixture
async def api(backend: Backend, tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Api]:
    """The app on the test's backend and a client of it, through the ASGI transport (tests/events serves it
    on a real socket instead)."""
    async with running_api(backend, make_settings(backend, tmp_path, **settings_overrides)) as created:
        yield created


@pytest.fixture
def user() -> str:
    return new_user()


@pytest.fixture
def create_thread(api: Api, user: str) -> Factory:
    async def create(**body: Any) -> dict[str, Any]:
        return await api.create_thread(body.pop("_user", user), **body)

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
