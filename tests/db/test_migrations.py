"""Migrations: they build exactly the schema the code describes, and instances starting together are safe."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Backend, fresh_database
from tests.harness.processes import THREADSTORE, threadstore_env
from tests.pg_server import PgServer
from threadstore.db import event_body, migrate
from threadstore.db.tables import THREAD_STATUSES, metadata

# Columns NOT NULL on PostgreSQL that stay nullable on SQLite, which cannot add NOT NULL to an existing column
# (migration 0006).
_NULLABLE_ON_SQLITE = {
    ("threads", "current_branch_id"),
    ("messages", "branch_id"),
    ("messages", "depth"),
    ("messages", "sibling_index"),
}


def _schema_diff(sync_conn: Any) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    existing = {ix["name"] for table in metadata.tables for ix in inspect(sync_conn).get_indexes(table)}
    sqlite = sync_conn.dialect.name == "sqlite"

    def expected(d: Any) -> bool:
        # Alembic cannot compare expression indexes (the DESC keys); those are checked by name below.
        if isinstance(d, tuple):
            return d[0] in ("add_index", "remove_index") and d[1].name in existing
        # A column's changes come as a list of (kind, schema, table, column, …, found, declared).
        return sqlite and all(c[0] == "modify_nullable" and (c[2], c[3]) in _NULLABLE_ON_SQLITE for c in d)

    return [d for d in compare_metadata(context, metadata) if not expected(d)]


def _index_names(sync_conn: Any) -> set[str]:
    """Every index but those a constraint makes (PostgreSQL lists a unique constraint's index among them)."""
    return {
        ix["name"]
        for table in metadata.tables
        for ix in inspect(sync_conn).get_indexes(table)
        if not ix.get("duplicates_constraint")
    }


def _thread_indexes(sync_conn: Any) -> dict[str, Any]:
    return {ix["name"]: ix for ix in inspect(sync_conn).get_indexes("threads")}


def _migrate(sync_conn: Any, step: Any, revision: str) -> None:
    """`step` is alembic.command.upgrade or .downgrade."""
    config = migrate.alembic_config()
    config.attributes["connection"] = sync_conn
    step(config, revision)


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
    # Equal, not merely included: an index the code no longer describes is still written on every change.
    declared = {ix.name for table in metadata.tables.values() for ix in table.indexes}
    assert declared == indexes
    assert revision == migrate.head_revision()


async def test_each_thread_status_has_its_own_partial_list_index(backend: Backend) -> None:
    engine = create_async_engine(backend.url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            indexes = await conn.run_sync(_thread_indexes)
    finally:
        await engine.dispose()
    assert set(indexes) == {f"ix_threads_user_updated_{status}" for status in THREAD_STATUSES}
    for status in THREAD_STATUSES:
        index = indexes[f"ix_threads_user_updated_{status}"]
        assert index["column_names"] == ["user_id", "updated_at", "id"]
        where = str(index["dialect_options"][f"{backend.name}_where"])
        assert "status" in where and f"'{status}'" in where, where


async def test_0003_downgrades_to_the_two_full_list_indexes_and_upgrades_again(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with fresh_database(backend.name, pg_server, tmp_path) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)

        async def run(fn: Any, *args: Any) -> Any:
            # A connection per step, as db/migrate.py does: Alembic commits only a transaction it began.
            async with engine.connect() as conn:
                return await conn.run_sync(fn, *args)

        try:
            await run(_migrate, command.downgrade, "0002")
            assert set(await run(_thread_indexes)) == {"ix_threads_user_status_updated", "ix_threads_user_updated"}
            assert await run(migrate.current_revision) == "0002"
            await run(_migrate, command.upgrade, "head")
            assert set(await run(_thread_indexes)) == {
                "ix_threads_user_updated_active",
                "ix_threads_user_updated_archived",
            }
            assert await run(migrate.current_revision) == migrate.head_revision()
        finally:
            await engine.dispose()


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


def _to(revision: str, *, down: bool = False, backfill: migrate.Backfill | None = None) -> Any:
    def run(sync_conn: Any) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = sync_conn
        if backfill is not None:
            config.attributes["backfill"] = backfill
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


async def _step(engine: AsyncEngine, revision: str, *, down: bool = False, **kw: Any) -> None:
    """A migration on a connection of its own, as db/migrate.py runs it: Alembic begins and commits its
    transactions itself (0006 commits its batches in between, which it cannot inside a caller's transaction)."""
    async with engine.connect() as conn:
        await conn.run_sync(_to(revision, down=down, **kw))


# Stored before 0004 (which names each record's thread): a create and an append of a thread that still
# exists, and the same for a thread deleted for good before the upgrade.
_BEFORE_0004 = [
    ("k-create", '{"id": "thr_kept", "object": "thread", "title": "kept"}', '{"Location": "/api/threads/thr_kept"}'),
    ("k-append", '{"id": "msg_1", "object": "message", "thread_id": "thr_kept", "content": "kept"}', "{}"),
    ("g-create", '{"id": "thr_gone", "object": "thread", "title": "secret"}', '{"Location": "/api/threads/thr_gone"}'),
    ("g-append", '{"id": "msg_2", "object": "message", "thread_id": "thr_gone", "content": "secret"}', "{}"),
]


async def test_0004_names_the_thread_of_older_records_and_erases_those_of_deleted_threads(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            await _step(engine, "0002")
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO threads (id, user_id, metadata, status, created_at, updated_at, version)"
                        " VALUES ('thr_kept', 'alice', '{}', 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
                    )
                )
                for key, body, headers in _BEFORE_0004:
                    await conn.execute(
                        text(
                            "INSERT INTO idempotency_keys"
                            " VALUES ('alice', :key, :fp, 201, :body, :headers, CURRENT_TIMESTAMP)"
                        ),
                        {"key": key, "fp": "f" * 64, "body": body, "headers": headers},
                    )
            await _step(engine, "head")
            async with engine.begin() as conn:
                query = "SELECT key, thread_id, status_code, response_body, response_headers FROM idempotency_keys"
                rows = {row[0]: tuple(row[1:]) for row in await conn.execute(text(query))}
                assert rows == {
                    "k-create": ("thr_kept", 201, _BEFORE_0004[0][1], _BEFORE_0004[0][2]),
                    "k-append": ("thr_kept", 201, _BEFORE_0004[1][1], "{}"),
                    "g-create": ("thr_gone", 404, "", "{}"),
                    "g-append": ("thr_gone", 404, "", "{}"),
                }

            await _step(engine, "0002", down=True)
            async with engine.begin() as conn:
                columns = await conn.run_sync(lambda c: inspect(c).get_columns("idempotency_keys"))
                assert "thread_id" not in {column["name"] for column in columns}
                erased = await conn.execute(text("SELECT count(*) FROM idempotency_keys WHERE status_code = 404"))
                assert erased.scalar_one() == 2  # erased records stay erased: older code replays an empty 404
        finally:
            await engine.dispose()


async def test_0005_keeps_every_delivered_event_id_and_numbers_the_rest_after_them(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    """Positions given out before stay the events' ids (every Last-Event-ID stays exact), unpublished events
    take the next ids in insert order, the JSON reads back as it was stored; and the downgrade turns them back."""
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            await _step(engine, "0004")
            async with engine.begin() as conn:
                stored = [  # (id, position, type, data): published out of insert order, and one unpublished
                    (1, 2, "thread.created", '{"id": "thr_a", "object": "thread", "title": "a"}'),
                    (2, 1, "thread.created", '{"id": "thr_b", "object": "thread", "title": "b"}'),
                    (3, None, "message.created", '{"id": "msg_1", "thread_id": "thr_a", "content": "hi"}'),
                    (4, 3, "thread.deleted", '{"id": "thr_b"}'),
                ]
                for event_id, position, kind, data in stored:
                    await conn.execute(
                        text(
                            "INSERT INTO events (id, user_id, type, data, created_at, position)"
                            " VALUES (:id, 'alice', :type, :data, CURRENT_TIMESTAMP, :position)"
                        ),
                        {"id": event_id, "type": kind, "data": data, "position": position},
                    )
            await _step(engine, "0005")
            async with engine.begin() as conn:
                rows = (await conn.execute(text("SELECT id, thread_id, type, body FROM events ORDER BY id"))).all()
                assert [(r[0], r[1], r[2], event_body.decode(r[3])) for r in rows] == [
                    (1, "thr_b", "thread.created", stored[1][3]),
                    (2, "thr_a", "thread.created", stored[0][3]),
                    (3, "thr_b", "thread.deleted", stored[3][3]),
                    (4, "thr_a", "message.created", stored[2][3]),
                ]
                state = (await conn.execute(text("SELECT published_through, pruned_through FROM event_state"))).one()
                assert tuple(state) == (4, 0)

            await _step(engine, "0004", down=True)
            async with engine.begin() as conn:
                back = (await conn.execute(text("SELECT id, position, data FROM events ORDER BY id"))).all()
                assert [tuple(r) for r in back] == [
                    (1, 1, stored[1][3]),
                    (2, 2, stored[0][3]),
                    (3, 3, stored[3][3]),
                    (4, 4, stored[2][3]),
                ]
        finally:
            await engine.dispose()
