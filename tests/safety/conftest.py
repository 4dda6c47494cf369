"""Fixtures of the safety suite: a database of its own per module and backend (with the PostgreSQL COMMIT-fault
trigger installed), and a fault injector on the app's engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import BACKENDS, Api, Backend, fresh_database, pooler_for
from tests.pg_server import PgServer
from tests.safety.faults import Injector, install_commit_trigger


@pytest.fixture(scope="module", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """Overrides the session database: these tests add a test-only trigger and snapshot whole tables."""
    pooler = pooler_for(request.param, request)
    async with fresh_database(request.param, pg_server, tmp_path_factory.mktemp("safety"), pooler=pooler) as created:
        if created.is_postgres:
            assert created.dsn is not None
            await install_commit_trigger(created.dsn)
        yield created


@pytest.fixture
async def injector(api: Api) -> AsyncIterator[Injector]:
    async with Injector(api.database.engine, api.backend) as created:
        yield created


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.safety.report import SWEEPS, table

    if SWEEPS:
        terminalreporter.write_sep("-", "fault sweep: injection points per endpoint and database")
        for line in table():
            terminalreporter.write_line(line)
