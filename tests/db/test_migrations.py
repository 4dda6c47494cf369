"""Migrations: they build exactly the schema the code describes, and instances starting together are safe."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Backend, fresh_database
from tests.harness.processes import THREADSTORE, threadstore_env
from tests.pg_server import PgServer
from threadstore.db import migrate
from threadstore.db.tables import metadata


def _schema_diff(sync_conn: Any) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    existing = {ix["name"] for table in metadata.tables for ix in inspect(sync_conn).get_indexes(table)}
    # Alembic cannot compare expression indexes (the DESC keys); those are checked by name below.
    return [
        d
        for d in compare_metadata(context, metadata)
        if not (d[0] in ("add_index", "remove_index") and d[1].name in existing)
    ]


def _index_names(sync_conn: Any) -> set[str]:
    return {ix["name"] for table in metadata.tables for ix in inspect(sync_conn).get_indexes(table)}


async def test_migrations_build_the_schema_the_code_describes(backend: Backend) -> None:
    engine = create_async_engine(backend.url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_schema_diff)
            indexes = await conn.run_sync(_index_names)
            revision = await conn.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()
    assert diff == []
    declared = {ix.name for table in metadata.tables.values() for ix in table.indexes}
    assert declared <= indexes
    assert revision == migrate.head_revision()


async def test_instances_migrating_together_all_succeed(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    """Four `threadstore migrate` processes on one fresh database: the lock serializes them, none fails."""
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        env = threadstore_env(tmp_path, database_url=fresh.url)
        processes = [
            await asyncio.create_subprocess_exec(*THREADSTORE, "migrate", env=env, cwd=tmp_path, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        results = [await p.communicate() for p in processes]
        assert [p.returncode for p in processes] == [0] * 4, [r[1] for r in results]
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                assert await conn.run_sync(migrate.current_revision) == migrate.head_revision()
        finally:
            await engine.dispose()
