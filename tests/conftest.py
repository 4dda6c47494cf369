"""Fixtures of the test harness (tests/harness): every API test runs on SQLite and on PostgreSQL, through the
real ASGI app and the real transaction owner. Each run makes its own databases; nothing depends on state
from an earlier run. Modules marked `through_pgbouncer` run on a third backend too: PostgreSQL through
PgBouncer in transaction mode (tests/harness/pgbouncer.py).

After every test that used an app, the harness asserts the pool has no checked-out connection and, on
PostgreSQL, that no backend of this run is left `idle in transaction`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.harness.app import running_api
from tests.harness.banner import skipped_suite
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
from tests.harness.pgbouncer import PgBouncer
from tests.harness.pgbouncer import start as start_pgbouncer
from tests.harness.replica import ReplicaPair
from tests.harness.replica import start_pair as start_replica_pair
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
    config.addinivalue_line(
        "markers", "through_pgbouncer: the module also runs on PostgreSQL through PgBouncer (transaction mode)"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = _pg_state.get("missing")
    if reason:
        remedy = "Set THREADSTORE_TEST_DATABASE_URL, start PostgreSQL on 127.0.0.1:5432, or install its binaries."
        skipped_suite(terminalreporter, "PostgreSQL", reason, remedy)
    else:
        server = _pg_state.get("server")
        if server is not None:
            terminalreporter.write_line(f"PostgreSQL suite ran against: {server.how}")
    bouncer_missing = _pg_state.get("pgbouncer_missing")
    if bouncer_missing:
        remedy = "Install it (apt-get install pgbouncer; scripts/test does so as root)."
        skipped_suite(terminalreporter, "PgBouncer", bouncer_missing, remedy)
    elif (bouncer := _pg_state.get("pgbouncer")) is not None:
        terminalreporter.write_line(f"PgBouncer suite ran through: {bouncer.version} (transaction mode)")


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


@pytest.fixture(scope="session")
def pgbouncer(pg_server: PgServer | None) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the run's PostgreSQL server. Without its binary the tests
    through it are skipped loudly, and fail when `CI` is set."""
    if pg_server is None:
        pytest.skip("PostgreSQL is not available (see the banner at the end of the run)")
    bouncer = start_pgbouncer(pg_server)
    if bouncer is None:
        message = "no pgbouncer binary (apt-get install pgbouncer)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}: the PgBouncer suite is required.")
        _pg_state["pgbouncer_missing"] = message
        pytest.skip(message)
    _pg_state["pgbouncer"] = bouncer
    try:
        yield bouncer
    finally:
        bouncer.stop()


def pooler_for(kind: str, request: pytest.FixtureRequest) -> PgBouncer | None:
    """The run's PgBouncer when `kind` is "pgbouncer" (started on first use), else None."""
    if kind != "pgbouncer":
        return None
    bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
    return bouncer


BACKENDS = ["sqlite", "postgresql", "pgbouncer"]


@pytest.fixture(scope="session", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    pooler = pooler_for(request.param, request)
    async with fresh_database(request.param, pg_server, tmp_path_factory.mktemp("db"), pooler=pooler) as created:
        yield created


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A backend-specific test is collected for its backend only (deselected, not skipped, elsewhere); the
    PgBouncer backend only for modules marked `through_pgbouncer`."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = params.get("backend", params.get("target", params.get("kind")))
        wrong = (
            (item.get_closest_marker("postgres_only") and backend == "sqlite")
            or (item.get_closest_marker("sqlite_only") and backend in ("postgresql", "pgbouncer"))
            or (backend == "pgbouncer" and not item.get_closest_marker("through_pgbouncer"))
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
        _binaries_missing("no PostgreSQL binaries (pg_ctl, initdb) to start a private cluster for stop/restart tests")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[ReplicaPair]:
    """A private primary and a real streaming replica of it (tests/harness/replica.py). Without the PostgreSQL
    binaries the replica tests are skipped loudly, and fail when `CI` is set."""
    pair = start_replica_pair()
    if pair is None:
        _binaries_missing("no PostgreSQL binaries (pg_ctl, initdb, pg_basebackup) to start a primary and its replica")
    try:
        yield pair
    finally:
        pair.stop()


def _binaries_missing(message: str) -> NoReturn:
    """Fails under `CI`; else skips, and the banner at the end of the run says why."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}")
    _pg_state.setdefault("missing", message)
    pytest.skip(message)
