"""Migrations: they build exactly the schema the code describes, and instances starting together are safe."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
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
from threadstore.db.tables import SEARCH_INDEXES, SEARCH_TABLES, THREAD_STATUSES, metadata

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
            if d[0] == "remove_table":  # search's tables outside the metadata (migration 0008)
                return bool(d[1].name in SEARCH_TABLES[sync_conn.dialect.name])
            if d[0] == "remove_index" and (
                d[1].name in SEARCH_INDEXES[sync_conn.dialect.name]
                or d[1].table.name in SEARCH_TABLES[sync_conn.dialect.name]
            ):
                return True
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
    assert declared | SEARCH_INDEXES[backend.name] == indexes
    assert revision == migrate.head_revision()


async def test_each_thread_status_has_its_own_partial_list_index(backend: Backend) -> None:
    engine = create_async_engine(backend.url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            indexes = await conn.run_sync(_thread_indexes)
    finally:
        await engine.dispose()
    lists = {name for name in set(indexes) - SEARCH_INDEXES[backend.name] if name.startswith("ix_threads_user_")}
    assert lists == {f"ix_threads_user_updated_{status}" for status in THREAD_STATUSES}
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
            assert set(await run(_thread_indexes)) - SEARCH_INDEXES[backend.name] - {"ix_threads_unindexed"} == {
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
        try:
            # A deadlock between migrators (one waiting in a statement while another builds an index
            # concurrently) would hang here: it fails instead.
            results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 180)
        except TimeoutError:
            for p in processes:
                p.kill()
            raise AssertionError("the migrators did not finish: they wait on each other") from None
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


# ------------------------------------------------------------------------------------------------ 0006

# Each must count 0 once 0006 has run: a v1 thread is a line, so every message sits at depth = seq on its
# thread's one trunk, after seq - 1, and the thread's current leaf is its last message.
_CHAIN_CHECKS = {
    "messages without a tree position": (
        "SELECT count(*) FROM messages WHERE depth IS NULL OR branch_id IS NULL OR sibling_index IS NULL"
    ),
    "messages not chained to the previous seq": """
        SELECT count(*) FROM messages m LEFT JOIN messages p ON p.id = m.parent_id
        WHERE NOT ((m.seq = 1 AND m.parent_id IS NULL AND m.depth = 1)
                   OR (p.thread_id = m.thread_id AND p.seq = m.seq - 1 AND m.depth = m.seq))
           OR m.sibling_index <> 1""",
    "messages off their thread's trunk": """
        SELECT count(*) FROM messages m JOIN branches b ON b.id = m.branch_id
        WHERE b.thread_id <> m.thread_id OR b.parent_branch_id IS NOT NULL""",
    "threads whose current is not their last message": """
        SELECT count(*) FROM threads t LEFT JOIN branches b ON b.id = t.current_branch_id
        WHERE b.id IS NULL OR b.parent_branch_id IS NOT NULL OR b.thread_id <> t.id
           OR t.current_depth <> t.message_count
           OR coalesce(t.current_message_id, '') <> coalesce(
                (SELECT m.id FROM messages m WHERE m.thread_id = t.id AND m.seq = t.message_count), '')""",
    "threads without exactly one branch, their trunk": """
        SELECT count(*) FROM threads t
        WHERE (SELECT count(*) FROM branches b WHERE b.thread_id = t.id AND b.parent_branch_id IS NULL) <> 1
           OR (SELECT count(*) FROM branches b WHERE b.thread_id = t.id) <> 1""",
}


async def _chain_problems(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {name: (await conn.execute(text(sql))).scalar_one() for name, sql in _CHAIN_CHECKS.items()}


async def _v1_thread(conn: Any, thread_id: str, n: int) -> None:
    """A thread as v1 stored it: no tree columns, seqs 1…n."""
    await conn.execute(
        text(
            "INSERT INTO threads (id, user_id, metadata, status, created_at, updated_at, message_count, version)"
            " VALUES (:id, 'alice', '{}', 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :n, 1)"
        ),
        {"id": thread_id, "n": n},
    )
    if n:
        await conn.execute(
            text(
                "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at)"
                " WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n)"
                " SELECT CAST(:id AS varchar(64)) || '_' || CAST(n AS varchar(10)), :id, n, 'user', 'hi', '{}',"
                " CURRENT_TIMESTAMP FROM s"
            ),
            {"id": thread_id, "n": n},
        )


def _v1_append(sync_conn: Any, thread_id: str, message_id: str) -> None:
    """v1's append, statement for statement: the thread's bump (which locks it) hands the seq to the insert."""
    if sync_conn.dialect.name == "postgresql":
        sync_conn.execute(
            text(
                "WITH b AS (UPDATE threads SET message_count = message_count + 1, version = version + 1"
                " WHERE id = :t RETURNING message_count AS seq)"
                " INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at)"
                " SELECT :id, :t, b.seq, 'user', 'by v1', '{}', CURRENT_TIMESTAMP FROM b"
            ),
            {"t": thread_id, "id": message_id},
        )
        return
    seq = sync_conn.execute(
        text(
            "UPDATE threads SET message_count = message_count + 1, version = version + 1 WHERE id = :t"
            " RETURNING message_count"
        ),
        {"t": thread_id},
    ).scalar_one()
    sync_conn.execute(
        text(
            "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at)"
            " VALUES (:id, :t, :seq, 'user', 'by v1', '{}', CURRENT_TIMESTAMP)"
        ),
        {"t": thread_id, "id": message_id, "seq": seq},
    )


def _v1_create(sync_conn: Any, thread_id: str) -> None:
    """v1's create with three messages; on PostgreSQL one statement, the messages in a CTE, as v1 writes it."""
    thread = (
        "INSERT INTO threads (id, user_id, metadata, status, created_at, updated_at, message_count, version)"
        " VALUES (:t, 'alice', '{}', 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 3, 1)"
    )
    rows = ", ".join(f"(:t || '_{n}', :t, {n}, 'user', 'v1', '{{}}', CURRENT_TIMESTAMP)" for n in (1, 2, 3))
    messages = f"INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at) VALUES {rows}"
    if sync_conn.dialect.name == "postgresql":
        typed = messages.replace(":t ||", "CAST(:t AS text) ||")
        sync_conn.execute(text(f"WITH m AS ({typed}) {thread}"), {"t": thread_id})
    else:
        sync_conn.execute(text(thread), {"t": thread_id})
        sync_conn.execute(text(messages), {"t": thread_id})


async def test_0006_turns_every_v1_thread_into_a_chain_on_its_trunk_in_batches(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            await _step(engine, "0005")
            sizes = {"thr_a": 3, "thr_big": 10_000, "thr_c": 1, "thr_d": 40, "thr_e": 0, "thr_f": 700, "thr_g": 2}
            async with engine.begin() as conn:
                for thread_id, n in sizes.items():
                    await _v1_thread(conn, thread_id, n)
            batches: list[int] = []
            await _step(engine, "head", backfill=migrate.Backfill(batch_messages=800, on_batch=batches.append))
            # thr_a alone (thr_big follows it), thr_big in 13 seq ranges, then thr_c … thr_g together (748)
            assert len(batches) == 15
            assert await _chain_problems(engine) == dict.fromkeys(_CHAIN_CHECKS, 0)
            async with engine.connect() as conn:
                leaf = (
                    await conn.execute(
                        text(
                            "SELECT current_message_id, current_depth FROM threads WHERE id IN ('thr_big', 'thr_e')"
                            " ORDER BY id"
                        )
                    )
                ).all()
                assert [tuple(r) for r in leaf] == [("thr_big_10000", 10_000), (None, 0)]
                assert await conn.run_sync(migrate.current_revision) == migrate.head_revision()
            # and back: 0005's tables, then the same result again
            await _step(engine, "0005", down=True)
            await _step(engine, "head")
            assert await _chain_problems(engine) == dict.fromkeys(_CHAIN_CHECKS, 0)
        finally:
            await engine.dispose()


async def test_0006_chains_what_the_previous_version_writes_during_the_backfill(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    """v1-shaped inserts (no tree columns) between batches: to a thread done, to one not reached yet, to a
    long thread half done (trunk made, current not set), and a new thread; the triggers and the backfill
    make chains of all of them. Then a v2-shaped insert fires no trigger."""
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        writer = create_async_engine(fresh.url, poolclass=NullPool)  # the previous version's own connections

        def v1_writes(done: int) -> None:
            # Called between the migrator's transactions, from its greenlet: the sync facade is usable here.
            with writer.sync_engine.begin() as conn:
                if done == 1:  # thr_a is done; thr_big, thr_c, thr_d are not reached
                    _v1_append(conn, "thr_a", "v1_a1")
                    _v1_append(conn, "thr_big", "v1_big1")
                    _v1_append(conn, "thr_d", "v1_d1")
                    _v1_create(conn, "thr_new")
                elif done == 3:  # thr_big: two of its ranges done
                    _v1_append(conn, "thr_big", "v1_big2")
                    _v1_append(conn, "thr_a", "v1_a2")
                    _v1_append(conn, "thr_new", "v1_new4")

        try:
            await _step(engine, "0005")
            async with engine.begin() as conn:
                for thread_id, n in {"thr_a": 5, "thr_big": 1_200, "thr_c": 5, "thr_d": 5}.items():
                    await _v1_thread(conn, thread_id, n)
            batches: list[int] = []

            def on_batch(done: int) -> None:
                batches.append(done)
                v1_writes(done)

            await _step(engine, "head", backfill=migrate.Backfill(batch_messages=300, on_batch=on_batch))
            assert len(batches) == 6  # thr_a; thr_big in 4 ranges (the last open-ended); thr_c and thr_d
            assert await _chain_problems(engine) == dict.fromkeys(_CHAIN_CHECKS, 0)
            async with engine.connect() as conn:
                written = await conn.execute(
                    text("SELECT id, depth FROM messages WHERE id LIKE 'v1_%' OR thread_id = 'thr_new' ORDER BY id")
                )
                assert [tuple(r) for r in written] == [
                    ("thr_new_1", 1),
                    ("thr_new_2", 2),
                    ("thr_new_3", 3),
                    ("v1_a1", 6),
                    ("v1_a2", 7),
                    ("v1_big1", 1_201),
                    ("v1_big2", 1_202),
                    ("v1_d1", 6),
                    ("v1_new4", 4),
                ]
            # The new version writes every tree column itself: no trigger may add a trunk or move a leaf.
            async with engine.begin() as conn:
                if backend.name == "sqlite":
                    await conn.execute(
                        text(
                            "INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)"
                            " VALUES ('thr_v2', NULL, 0, 1, 0)"
                        )
                    )
                    trunk = (await conn.execute(text("SELECT last_insert_rowid()"))).scalar_one()
                else:
                    trunk = (await conn.execute(text("SELECT nextval('branches_id_seq')"))).scalar_one()
                    await conn.execute(
                        text(
                            "INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level)"
                            " VALUES (:b, 'thr_v2', NULL, 0, 1, 0)"
                        ),
                        {"b": trunk},
                    )
                await conn.execute(
                    text(
                        "INSERT INTO threads (id, user_id, metadata, status, created_at, updated_at, message_count,"
                        " version, current_message_id, current_branch_id, current_depth)"
                        " VALUES ('thr_v2', 'alice', '{}', 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 1,"
                        " 'v2_1', :b, 1)"
                    ),
                    {"b": trunk},
                )
                await conn.execute(
                    text(
                        "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id,"
                        " depth, parent_id, sibling_index)"
                        " VALUES ('v2_1', 'thr_v2', 1, 'user', 'v2', '{}', CURRENT_TIMESTAMP, :b, 1, NULL, 1)"
                    ),
                    {"b": trunk},
                )
            assert await _chain_problems(engine) == dict.fromkeys(_CHAIN_CHECKS, 0)
        finally:
            await writer.dispose()
            await engine.dispose()


async def test_0006_resumes_a_backfill_interrupted_after_some_batches(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)

        def crash(done: int) -> None:
            if done == 3:  # thr_a done, thr_big's first two ranges done: its trunk exists, its row is not set
                raise RuntimeError("the migrator died")

        try:
            await _step(engine, "0005")
            async with engine.begin() as conn:
                for thread_id, n in {"thr_a": 5, "thr_big": 1_200, "thr_c": 5, "thr_d": 0}.items():
                    await _v1_thread(conn, thread_id, n)
            with pytest.raises(RuntimeError, match="the migrator died"):
                await _step(engine, "head", backfill=migrate.Backfill(batch_messages=300, on_batch=crash))
            async with engine.connect() as conn:
                assert await conn.run_sync(migrate.current_revision) == "0005"
                half = await conn.execute(
                    text(
                        "SELECT t.id, t.current_branch_id IS NOT NULL,"
                        " (SELECT count(*) FROM branches b WHERE b.thread_id = t.id),"
                        " (SELECT count(*) FROM messages m WHERE m.thread_id = t.id AND m.depth IS NOT NULL)"
                        " FROM threads t ORDER BY t.id"
                    )
                )
                assert [tuple(r) for r in half] == [
                    ("thr_a", True, 1, 5),
                    ("thr_big", False, 1, 600),
                    ("thr_c", False, 0, 0),
                    ("thr_d", False, 0, 0),
                ]
            resumed: list[int] = []
            await _step(engine, "head", backfill=migrate.Backfill(batch_messages=300, on_batch=resumed.append))
            # thr_big's four ranges again (the first two find nothing left to chain), then thr_c with thr_d
            assert len(resumed) == 5
            assert await _chain_problems(engine) == dict.fromkeys(_CHAIN_CHECKS, 0)
            async with engine.connect() as conn:
                assert await conn.run_sync(migrate.current_revision) == migrate.head_revision()
        finally:
            await engine.dispose()


async def test_0006_names_the_message_of_stored_appends_and_of_raw_message_events(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    """So that a delete of the message's branch can erase them: a keyed append's stored 201 gets message_id,
    and a pre-0005 raw message.created event refers to its message's content instead of holding it."""
    original = '{"id": "thr_a_1", "object": "message", "thread_id": "thr_a", "seq": 1, "content": "hi", "role": "user"}'
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            await _step(engine, "0004")
            async with engine.begin() as conn:
                await _v1_thread(conn, "thr_a", 1)
                await conn.execute(
                    text(
                        "INSERT INTO events (id, user_id, type, data, created_at, position)"
                        " VALUES (1, 'alice', 'message.created', :data, CURRENT_TIMESTAMP, 1)"
                    ),
                    {"data": original},
                )
            await _step(engine, "0005")
            async with engine.begin() as conn:
                keys = [
                    ("append", 201, '{"id": "thr_a_1", "object": "message", "thread_id": "thr_a"}'),
                    ("create", 201, '{"id": "thr_a", "object": "thread"}'),
                    ("erased", 404, ""),
                ]
                for key, status, body in keys:
                    await conn.execute(
                        text(
                            "INSERT INTO idempotency_keys VALUES"
                            " ('alice', :key, :fp, :status, :body, '{}', CURRENT_TIMESTAMP, 'thr_a')"
                        ),
                        {"key": key, "fp": "f" * 64, "status": status, "body": body},
                    )
            await _step(engine, "head")
            async with engine.connect() as conn:
                named = await conn.execute(text("SELECT key, message_id FROM idempotency_keys ORDER BY key"))
                assert [tuple(r) for r in named] == [("append", "thr_a_1"), ("create", None), ("erased", None)]
                event = (
                    await conn.execute(
                        text(
                            "SELECT e.body, e.member, e.content_of, m.content FROM events e"
                            " LEFT JOIN messages m ON m.id = e.content_of"
                        )
                    )
                ).one()
            assert event.content_of == "thr_a_1"
            assert b'"hi"' not in bytes(event.body)  # the content lives in the message row only
            assert json.loads(event_body.decode(bytes(event.body), event.member, event.content)) == json.loads(original)
        finally:
            await engine.dispose()


async def test_0007_leaves_every_message_completed_and_adds_only_without_a_rewrite(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    """Streamed replies: messages written before 0007 come out `completed`, without finish_reason, model, usage,
    parts, or feedback; and 0007 goes down and up again."""
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            await _step(engine, "0005")
            async with engine.begin() as conn:
                await _v1_thread(conn, "thr_a", 3)
            await _step(engine, "0006")
            await _step(engine, "head")
            columns = "status, finish_reason, model, input_tokens, output_tokens, parts, feedback_rating, active_at"
            async with engine.connect() as conn:
                rows = (await conn.execute(text(f"SELECT {columns} FROM messages ORDER BY seq"))).all()
                assert [tuple(r) for r in rows] == [("completed", None, None, None, None, None, None, None)] * 3
                deltas = (await conn.execute(text("SELECT count(*) FROM message_deltas"))).scalar_one()
                assert deltas == 0
                if backend.name == "postgresql":  # room on each page for a reply's next row versions
                    options = "SELECT reloptions FROM pg_class WHERE relname = 'messages'"
                    assert (await conn.execute(text(options))).scalar_one() == ["fillfactor=90"]
            await _step(engine, "0006", down=True)
            async with engine.connect() as conn:
                found = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("messages")})
                assert "status" not in found and "parts" not in found
            await _step(engine, "head")
            async with engine.connect() as conn:
                assert await conn.run_sync(migrate.current_revision) == migrate.head_revision()
        finally:
            await engine.dispose()


async def test_0008_then_migrate_indexes_what_was_written_before_search(
    backend: Backend, pg_server: PgServer | None, tmp_path: Path
) -> None:
    """Search: `threadstore migrate` on a database of 0007 adds the index and fills it for the messages and
    titles written before (its pending pass); 0008 goes down and up again."""
    async with fresh_database(backend.name, pg_server, tmp_path, migrated=False) as fresh:
        engine = create_async_engine(fresh.url, poolclass=NullPool)
        try:
            await _step(engine, "0005")
            async with engine.begin() as conn:
                await _v1_thread(conn, "thr_a", 3)
                await conn.execute(text("UPDATE threads SET title = 'Grüße aus Köln' WHERE id = 'thr_a'"))
            await _step(engine, "0007")
            env = threadstore_env(tmp_path, database_url=fresh.url)
            process = await asyncio.create_subprocess_exec(
                *THREADSTORE, "migrate", env=env, cwd=tmp_path, stderr=subprocess.PIPE
            )
            _, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            assert "indexed 1 threads and 3 messages" in err.decode()
            found = {
                "postgresql": [
                    "SELECT count(*) FROM messages WHERE search_terms @@ CAST('''hi''' AS tsquery)",
                    "SELECT count(*) FROM threads WHERE search_terms @@ CAST('''grusse'' <-> ''aus''' AS tsquery)",
                ],
                "sqlite": [
                    "SELECT count(*) FROM search_fts WHERE search_fts MATCH 'terms : hi'",
                    "SELECT count(*) FROM search_fts WHERE search_fts MATCH 'terms : \"grusse aus koln\"'",
                ],
            }[backend.name]
            async with engine.connect() as conn:
                assert [(await conn.execute(text(sql))).scalar_one() for sql in found] == [3, 1]
            await _step(engine, "0007", down=True)
            async with engine.connect() as conn:
                columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("messages")})
                assert "search_terms" not in columns
            await _step(engine, "head")
            async with engine.connect() as conn:
                assert await conn.run_sync(migrate.current_revision) == migrate.head_revision()
        finally:
            await engine.dispose()
